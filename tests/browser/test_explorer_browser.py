"""The lineage explorer on the real site (#15): it uses the page's width, every paper's label
can be read at "Fit", a legend names the edge colours, a box finds a node, focus mode shows one
node's lineage alone, and a list beside the canvas reaches every page without a mouse."""

from __future__ import annotations

import json

from tests.browser.conftest import shot

READY_TIMEOUT_MS = 30_000  # generous: cytoscape lays out 167 nodes on a busy 2-core machine
MIN_LABEL_PX = 11  # a label smaller than this on screen is not read


def open_explorer(page, url):
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.goto(url + "lineage.html")
    page.wait_for_selector("#kb-explorer[data-ready=true]", timeout=READY_TIMEOUT_MS)
    page.locator(".kb-explorer__graph").scroll_into_view_if_needed()


def test_explorer_fills_the_page_and_labels_read_at_fit(page, real_url):
    open_explorer(page, real_url)
    graph = page.locator(".kb-explorer__graph").bounding_box()
    assert graph["width"] >= 1400 and graph["height"] >= 600  # the page, not the text column
    page.locator("button[name=fit]").click()
    sizes = page.evaluate("""() => kbExplorer.nodes(':visible').map(n =>
        parseFloat(n.style('font-size')) * kbExplorer.zoom())""")
    assert len(sizes) >= 61 and min(sizes) >= MIN_LABEL_PX, (len(sizes), min(sizes))
    bert = page.evaluate("kbExplorer.$id('bert').renderedBoundingBox({includeLabels: true})")
    assert 0 <= bert["x1"] and bert["x2"] <= graph["width"]  # inside the canvas at fit
    legend = page.locator(".kb-explorer__legend label")
    assert legend.count() >= 8 and page.locator(".kb-explorer__legend svg line").count() >= 8
    shot(page, "explorer-fit")
    assert page.errors == []


def test_explorer_finds_a_node_and_focuses_on_its_lineage(page, real_url):
    open_explorer(page, real_url)
    page.fill("input[name=find]", "bert")
    page.locator("button[name=go]").click()
    page.wait_for_selector(".kb-explorer__open")
    assert page.evaluate("kbExplorer.$id('bert').hasClass('focus')")
    page.locator("button[name=focus]").click()
    visible = set(page.evaluate("kbExplorer.nodes(':visible').map(n => n.id())"))
    assert {"bert", "transformer", "elmo", "gpt", "roberta"} <= visible  # its sources and heirs
    assert "alexnet" not in visible and "gan" not in visible  # nothing else
    assert len(visible) < 61
    page.locator(".kb-explorer__graph").scroll_into_view_if_needed()
    shot(page, "explorer-focus")
    page.locator("button[name=focus]").click()  # and back
    assert page.evaluate("kbExplorer.nodes(':visible').length") >= 61
    assert page.errors == []


def test_explorer_edges_read_as_sentences_and_a_list_reaches_every_paper(page, real_url, real_site):
    open_explorer(page, real_url)
    data = json.loads((real_site / "assets" / "lineage.json").read_text())
    edge = next(e for e in data["edges"] if (e["source"], e["target"]) == ("gpt", "bert"))
    assert edge["en"].startswith("bert ") and "gpt" in edge["en"]  # the builder is the subject
    links = page.locator("#kb-explorer-list a[href*='/papers/']")  # Material makes hrefs absolute
    assert links.count() == sum(1 for n in data["nodes"] if n["kind"] == "paper")
    links.first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/papers/*.html")
