"""The study site in a real browser (Debian's chromium), served from 127.0.0.1 only."""

from __future__ import annotations

import json

from tests.browser.conftest import shot


def test_home_loads_without_console_errors(page, base_url):
    page.goto(base_url + "index.html")
    page.wait_for_load_state("networkidle")
    assert "Deep-learning papers" in page.title()
    assert page.errors == []
    shot(page, "home")


def test_paper_page_shows_both_languages_math_and_diagram(page, base_url):
    page.goto(base_url + "papers/attn.html")
    page.wait_for_load_state("networkidle")
    panel = page.locator(".tabbed-set").first
    assert panel.get_by_text("decoder learns where to look").is_visible()
    panel.get_by_text("中文", exact=True).click()
    assert panel.get_by_text("注意力機制", exact=False).first.is_visible()
    page.wait_for_selector(
        ".katex", state="attached", timeout=5000
    )  # math typeset by the vendored KaTeX
    svg = page.locator("svg.kb-lineage")
    assert svg.is_visible() and svg.locator("a").count() >= 4
    svg.scroll_into_view_if_needed()
    shot(page, "paper")
    # The language chosen persists across pages (content.tabs.link).
    page.goto(base_url + "papers/mlm.html")
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("以遮蔽語言模型", exact=False).first.is_visible()
    page.locator("svg.kb-lineage a[*|href$='concepts/attn/additive.html']").click()
    page.wait_for_url("**/concepts/attn/additive.html")
    assert page.errors == []


def test_explorer_renders_highlights_and_navigates(page, base_url):
    page.goto(base_url + "lineage.html")
    page.wait_for_selector("#kb-explorer[data-ready=true]", timeout=10000)
    data = json.loads(page.evaluate("fetch('assets/lineage.json').then(r => r.text())"))
    assert page.evaluate("window.kbExplorer.nodes().length") == len(data["nodes"])
    shot(page, "lineage")

    def centre_of(node: str) -> tuple[float, float]:
        box = page.locator(".kb-explorer__graph").bounding_box()
        pos = page.evaluate(f"window.kbExplorer.$id({node!r}).renderedPosition()")
        return box["x"] + pos["x"], box["y"] + pos["y"]

    page.mouse.click(*centre_of("b"))
    page.wait_for_selector(".kb-explorer__open")
    assert (
        page.evaluate("window.kbExplorer.$id('a').hasClass('faded')") is False
    )  # b came from a (via a/y)
    assert page.evaluate("window.kbExplorer.$id('e').hasClass('faded')") is True  # neither
    # Filters: hiding the "uses" edges hides them in the graph.
    page.locator("input[name=type][value=uses]").uncheck()
    assert page.evaluate(
        "window.kbExplorer.edges('[type = \"uses\"]').every(e => e.hasClass('hidden'))"
    )
    page.locator("input[name=to]").fill("2014")
    page.locator("input[name=to]").dispatch_event("change")
    assert page.evaluate("window.kbExplorer.$id('mlm').hasClass('hidden')")
    page.locator(".kb-explorer__open").click()
    page.wait_for_url("**/papers/b.html")
    page.go_back()
    page.wait_for_selector("#kb-explorer[data-ready=true]", timeout=10000)
    page.mouse.dblclick(*centre_of("c"))
    page.wait_for_url("**/papers/c.html")
    assert page.errors == []


def test_search_finds_chinese_and_english(page, base_url):
    page.goto(base_url + "index.html")
    page.wait_for_load_state("networkidle")
    for query, expect in (
        ("注意力", "papers/attn.html"),
        ("遮蔽語言模型", "papers/mlm.html"),
        ("masked language model", "papers/mlm.html"),
    ):
        field = page.locator("input.md-search__input")
        field.click()
        field.fill("")
        field.press_sequentially(query)
        field.press("End")  # Material reads the query on keyup; typed CJK text arrives without one
        page.wait_for_selector(f".md-search-result__link[href*='{expect}']", timeout=10000)
        if query == "遮蔽語言模型":
            shot(page, "search")
        field.fill("")
        page.keyboard.press("Escape")
    assert page.errors == []
