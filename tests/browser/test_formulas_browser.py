"""Every formula renders on every paper and concept page of the real site (#15): chromium
loads each page, waits for the vendored KaTeX, and finds no `.katex-error` and no TeX left as
visible text (`$`, `\\frac`, `^{`) outside code."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.conftest import shot

TYPESET_TIMEOUT_MS = 20_000  # generous: a busy 2-core machine typesets a long page slowly
# The article's visible text, without code, math KaTeX made and math it could not make.
VISIBLE_TEXT = """() => {
  const article = document.querySelector("article").cloneNode(true);
  article.querySelectorAll("pre, code, .katex, .katex-error, svg, script, style")
         .forEach(e => e.remove());
  return article.innerText;
}"""
LEFT_AS_TEXT = re.compile(r"\$|\\frac|\^\{|\\mathbf|\\sum|_\{")


def pages(site) -> list[str]:
    found = [p.relative_to(site).as_posix() for p in sorted((site / "papers").glob("*.html"))]
    found += [p.relative_to(site).as_posix() for p in sorted((site / "concepts").rglob("*.html"))]
    return [p for p in found if not p.endswith("index.html")]


def test_every_formula_renders_on_every_paper_and_concept_page(page, real_site, real_url):
    checked, faults = 0, {}
    for rel in pages(real_site):
        page.goto(real_url + rel)
        page.wait_for_load_state("load")
        if page.locator(".arithmatex").count():
            page.wait_for_function(
                "() => [...document.querySelectorAll('.arithmatex')].every(e => e.querySelector('.katex, .katex-error'))",
                timeout=TYPESET_TIMEOUT_MS,
            )
        errors = page.locator(".katex-error").all_inner_texts()
        text = page.evaluate(VISIBLE_TEXT)
        left = sorted(
            {text[max(0, m.start() - 20) : m.end() + 20] for m in LEFT_AS_TEXT.finditer(text)}
        )
        if errors or left:
            faults[rel] = {"katex-error": errors[:3], "tex as text": left[:3]}
        checked += 1
    assert checked >= 61 + 100, checked
    if faults:
        pytest.fail(
            f"{len(faults)} pages with unrendered formulas:\n"
            + json.dumps(faults, ensure_ascii=False, indent=1),
            pytrace=False,
        )
    page.goto(real_url + "papers/bert.html")
    page.wait_for_load_state("load")
    page.locator(".arithmatex").first.scroll_into_view_if_needed()
    shot(page, "bert-formulas")


@pytest.mark.parametrize("rel", ["papers/bert.html", "papers/transformer.html"])
def test_display_formulas_are_display_math(page, real_url, rel):
    page.goto(real_url + rel)
    page.wait_for_selector(".katex-display", state="attached", timeout=TYPESET_TIMEOUT_MS)
    assert page.locator("div.arithmatex .katex-display").count() >= 2
