"""A course page teaches in a real browser (#14): the figure of our own is drawn with its labels,
the code sits beside its equation with line numbers, and the confusions follow the language tab.
Screenshots of three course pages go to test-output/."""

from __future__ import annotations

import pytest

from tests.browser.conftest import SHOTS

TYPESET_TIMEOUT_MS = 20_000  # generous: KaTeX on a long page of a busy 2-core machine


@pytest.mark.parametrize("paper", ["bert", "resnet", "transformer"])
def test_course_page_shows_its_figure_and_the_code_beside_the_equation(page, real_url, paper):
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(real_url + f"papers/{paper}.html")
    page.wait_for_selector(".kb-eqcode .katex", state="attached", timeout=TYPESET_TIMEOUT_MS)
    figure = page.locator("figure.kb-figure svg").first
    figure.scroll_into_view_if_needed()
    box = figure.bounding_box()
    assert box["width"] >= 300 and box["height"] >= 100  # drawn, not collapsed
    assert figure.get_attribute("role") == "img" and figure.locator("title").count() == 1
    assert figure.locator("text").count() >= 3
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"course-{paper}-figure.png"))
    block = page.locator(".kb-eqcode").first
    block.scroll_into_view_if_needed()
    eq, code = block.locator(".kb-eqcode__eq"), block.locator(".kb-eqcode__code")
    assert eq.locator(".katex").count() >= 1 and code.locator("pre code").count() == 1
    assert code.locator(".linenos, .linenodiv, [class*=lineno]").count() >= 1
    e, c = eq.bounding_box(), code.bounding_box()
    assert c["x"] >= e["x"] + e["width"] - 1 and abs(c["y"] - e["y"]) < 200  # side by side
    page.screenshot(path=str(SHOTS / f"course-{paper}-code.png"))
    link = block.locator("a.kb-eqcode__link")
    href = link.get_attribute("href")
    assert f"code/{paper}.html#__codelineno-0-" in href
    link.click()
    page.wait_for_url(f"**/code/{paper}.html*")
    line = href.rsplit("#", 1)[1]
    assert page.locator(f"[id='{line}'], [name='{line}']").count() >= 1
    assert page.errors == []


@pytest.mark.parametrize("paper", ["resnet", "transformer"])
def test_course_page_draws_the_measured_idea_against_the_ablation(page, real_url, paper):
    page.goto(real_url + f"papers/{paper}.html")
    chart = page.locator(".kb-chart[data-drawn='1']")  # Chart.js drew results/<id>.json's history
    chart.wait_for(timeout=TYPESET_TIMEOUT_MS)
    chart.scroll_into_view_if_needed()
    box = chart.locator("canvas").bounding_box()
    assert box["width"] >= 300 and box["height"] >= 150
    page.screenshot(path=str(SHOTS / f"course-{paper}-measured.png"))
    assert page.errors == []


def test_confusions_follow_the_language_tab(page, real_url):
    page.goto(real_url + "papers/bert.html")
    heading = page.locator("h2#common-confusions")
    heading.scroll_into_view_if_needed()
    tabs = page.locator("h2#common-confusions + .tabbed-set")
    assert tabs.locator("li").first.is_visible()
    tabs.get_by_text("中文", exact=True).click()
    zh = tabs.locator(".tabbed-block").nth(1)
    assert zh.is_visible() and not tabs.locator(".tabbed-block").nth(0).is_visible()
    assert "[CLS]" in zh.inner_text() or "MASK" in zh.inner_text()
