"""The site built from hostile records (tests/data/xss) in chromium: on every page, and in search
results for a payload, no script from a record runs (no dialog, ``window.__xss`` unset) and the
DOM holds no ``javascript:``/``data:`` URL or on* attribute from a record."""

from __future__ import annotations

import functools
import threading
from http.server import ThreadingHTTPServer

import pytest

from tests.browser.conftest import Quiet, shot

#: Scripts in the DOM that could run: on* attributes (but the template's own form handler),
#: and URL attributes with a script or data scheme.
DOM_SCAN = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const v = a.value.replace(/\\s+/g, '').toLowerCase();
      if (a.name.startsWith('on') && !(el.tagName === 'FORM' && a.name === 'onsubmit' && a.value === 'return false'))
        bad.push(el.tagName + ' ' + a.name + '=' + a.value);
      if (/^(href|src|xlink:href|action|formaction|srcdoc|data)$/.test(a.name) && /^(javascript|data|vbscript):/.test(v))
        bad.push(el.tagName + ' ' + a.name + '=' + a.value);
    }
    if (/^(IFRAME|EMBED|OBJECT)$/.test(el.tagName)) bad.push(el.tagName);
  }
  return bad;
}"""


@pytest.fixture(scope="module")
def xss_url(xss_project):
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(xss_project / "site"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture
def watched(page):
    """The page, with every dialog (alert, confirm, prompt) recorded and dismissed."""
    page.dialogs = []

    def on_dialog(d):
        page.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    return page


def assert_clean(page, where: str, hover: bool = True) -> None:
    for box in (
        page.locator("article h1, article p, article a").all()[:8] if hover else []
    ):  # hover: tempt onmouseover
        try:
            box.hover(timeout=200)
        except Exception:  # noqa: BLE001 - hidden or detached elements are fine
            pass
    assert page.dialogs == [], f"{where}: a dialog fired: {page.dialogs}"
    assert page.evaluate("typeof window.__xss") == "undefined", f"{where}: window.__xss was set"
    assert page.evaluate(DOM_SCAN) == [], where


def test_no_record_script_runs_on_any_page(watched, xss_project, xss_url):
    site = xss_project / "site"
    rels = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert {"papers/xss.html", "concepts/xss/payload.html", "timeline.html", "lineage.html"} <= set(
        rels
    )
    for rel in rels:
        watched.goto(xss_url + rel)
        watched.wait_for_load_state("networkidle")
        if rel == "lineage.html":
            watched.wait_for_selector("#kb-explorer[data-ready=true]", timeout=10000)
            watched.locator(
                ".kb-explorer__graph"
            ).click()  # select whatever is there: the panel shows a label
        assert_clean(watched, rel)
    # The payload is on the page as text.
    watched.goto(xss_url + "papers/xss.html")
    assert watched.get_by_text("<script>window.__xss=1</script>", exact=False).first.is_visible()
    shot(watched, "xss-paper")


def test_explorer_labels_hostile_titles_as_text(watched, xss_url):
    watched.goto(xss_url + "lineage.html")
    watched.wait_for_selector("#kb-explorer[data-ready=true]", timeout=10000)
    label = watched.evaluate("window.kbExplorer.$id('xss').data('label')")
    assert "<script>window.__xss=1</script>" in label
    box = watched.locator(".kb-explorer__graph").bounding_box()
    pos = watched.evaluate("window.kbExplorer.$id('xss').renderedPosition()")
    watched.mouse.click(box["x"] + pos["x"], box["y"] + pos["y"])
    watched.wait_for_selector(".kb-explorer__open")
    assert "<script>" in watched.locator(".kb-explorer__open").inner_text()
    assert_clean(watched, "lineage.html after selecting xss", hover=False)


@pytest.mark.parametrize("query", ["onerror", "script", "__xss", "javascript"])
def test_search_results_for_a_payload_run_nothing(watched, xss_url, query):
    watched.goto(xss_url + "index.html")
    watched.wait_for_load_state("networkidle")
    field = watched.locator("input.md-search__input")
    field.click()
    field.press_sequentially(query)
    field.press("End")
    watched.wait_for_selector(".md-search-result__item", timeout=10000)
    watched.wait_for_timeout(300)
    assert watched.locator(".md-search-result__item").count() >= 1
    assert_clean(watched, f"search {query!r}")
    if query == "onerror":
        shot(watched, "xss-search")
