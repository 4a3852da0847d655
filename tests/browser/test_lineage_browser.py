"""Lineage in one language at a time, in chromium: the English / 中文 tabs switch the lists and
the diagram's labels together (kb.css), and the choice carries over to the next page."""

from __future__ import annotations


def visible(page, selector: str) -> bool:
    """Whether the first match is shown, once the page settles (a tab switch restyles a frame later)."""
    try:
        page.locator(selector).first.wait_for(state="visible", timeout=3000)
        return True
    except Exception:  # noqa: BLE001 - playwright's TimeoutError
        return False


def hidden(page, selector: str) -> bool:
    try:
        page.locator(selector).first.wait_for(state="hidden", timeout=3000)
        return True
    except Exception:  # noqa: BLE001
        return False


def test_lineage_lists_and_diagram_follow_the_language_tab(page, base_url):
    page.goto(base_url + "papers/attn.html")
    page.wait_for_load_state("networkidle")
    came = page.locator(".tabbed-set", has_text="Came from").first
    assert came.get_by_text("compares itself with", exact=False).first.is_visible()
    assert not came.get_by_text("比較：與 C 比較。", exact=False).first.is_visible()
    assert visible(page, "svg.kb-lineage .kb-lang-en text.kb-edge-label")
    assert hidden(page, "svg.kb-lineage .kb-lang-zh text.kb-edge-label")
    came.locator(".tabbed-labels label", has_text="中文").click()
    assert came.get_by_text("比較：與 C 比較。", exact=False).first.is_visible()
    assert not came.get_by_text("compares itself with", exact=False).first.is_visible()
    assert visible(page, "svg.kb-lineage .kb-lang-zh text.kb-edge-label")
    assert hidden(page, "svg.kb-lineage .kb-lang-en text.kb-edge-label")
    # the linked tabs keep 中文 on the next page, diagram included
    page.goto(base_url + "concepts/attn/additive.html")
    page.wait_for_load_state("networkidle")
    assert visible(page, '.tabbed-block li:has-text("啟發：x 啟發了為位置打分數。")')
    assert hidden(page, '.tabbed-block li:has-text("is inspired by")')
    assert visible(page, "svg.kb-lineage .kb-lang-zh text.kb-edge-label")
    assert hidden(page, "svg.kb-lineage .kb-lang-en text.kb-edge-label")
    assert page.errors == []
