"""Hostile records (tests/data/xss: XSS payloads in every text field) build into a site with no
markup, script or unsafe URL from them: checked here in the HTML, in tests/browser/ in chromium."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from kb.knowledge.loader import parse_record

#: on* attributes our own templates write (everything else would have come from a record).
TEMPLATE_HANDLERS = {("form", "onsubmit", "return false")}
URL_ATTRS = {
    "href",
    "src",
    "xlink:href",
    "action",
    "formaction",
    "srcdoc",
    "data",
    "poster",
    "background",
}


class Findings(HTMLParser):
    """Everything in a page that could run script. ``<title>`` is RCDATA, as in a browser."""

    CDATA_CONTENT_ELEMENTS = ("script", "style", "title", "textarea")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.bad: list[str] = []
        self.text: list[str] = []
        self._tag: str | None = None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag in ("iframe", "embed", "object", "frame", "base", "meta") and tag != "meta":
            self.bad.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and (tag, name, value) not in TEMPLATE_HANDLERS:
                self.bad.append(f"<{tag} {name}={value!r}>")
            squeezed = "".join(value.split()).lower()
            if name in URL_ATTRS and squeezed.startswith(("javascript:", "data:", "vbscript:")):
                self.bad.append(f"<{tag} {name}={value!r}>")
        if tag == "img" and "src" in dict(attrs) and "://" in dict(attrs)["src"]:
            self.bad.append(f"<img src={dict(attrs)['src']!r}> (loads from elsewhere)")

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        if self._tag == "script" and ("__xss" in data or "alert(" in data):
            self.bad.append(f"<script>{data[:60]}")
        elif self._tag not in ("script", "style"):
            self.text.append(data)


def scan(path: Path) -> Findings:
    f = Findings()
    f.feed(path.read_text(encoding="utf-8"))
    f.close()
    return f


def pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_page_of_the_hostile_site_is_free_of_script_from_records(xss_project):
    site = xss_project / "site"
    assert {
        "papers/xss.html",
        "papers/xss-b.html",
        "concepts/xss/payload.html",
        "concepts/xss-b/next.html",
        "timeline.html",
        "lineage.html",
        "course.html",
        "bibliography.html",
    } <= {p.relative_to(site).as_posix() for p in pages(site)}
    bad = {p.relative_to(site).as_posix(): scan(p).bad for p in pages(site)}
    assert {k: v for k, v in bad.items() if v} == {}


def test_payloads_are_shown_as_text_not_dropped_or_evaluated(xss_project):
    text = " ".join(scan(xss_project / "site" / "papers" / "xss.html").text)
    assert "<script>window.__xss=1</script>" in text  # escaped, so visible
    assert '<img src=x onerror="window.__xss=1">' in text
    assert "{{ 7*7 }}" in text and "{% raw %}" in text  # Jinja never evaluates record text
    assert "[js](javascript:alert(1))" in text  # a bad link stays text
    assert "</title><script>window.__xss=1</script>" in text  # the title's own payload, in the h1


def test_page_title_cannot_close_the_title_element(xss_project):
    html = (xss_project / "site" / "papers" / "xss.html").read_text(encoding="utf-8")
    head = html[html.index("<title>") : html.index("</title>")]
    assert "<" not in head[len("<title>") :]
    assert head.startswith("<title>Hostile &lt;/title&gt;&lt;script&gt;")


def test_search_index_titles_hold_no_markup(xss_project):
    index = json.loads(
        (xss_project / "site" / "search" / "search_index.json").read_text(encoding="utf-8")
    )
    titles = [
        d["title"]
        for d in index["docs"]
        if d["location"].startswith(("papers/xss", "concepts/xss"))
    ]
    assert titles and all("<" not in t for t in titles), titles


def test_math_keeps_its_braces_and_the_bibtex_fence_holds(xss_project):
    html = (xss_project / "site" / "papers" / "xss.html").read_text(encoding="utf-8")
    assert r"a_{ij}" in html  # math is not touched by the brace rule
    assert "&#123;: onclick=x}" in html  # attr_list syntax stays text


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("id", '"><script>', "does not match"),
        ("tags", ['x"><img src=x onerror=alert(1)>'], "does not match"),
        ("concepts", [{"id": "../../x", "name": {"en": "a", "zh-Hant": "b"}}], "does not match"),
        ("track", "javascript:alert(1)", "is not one of"),
        ("url", "javascript:alert(1)", "does not match"),
        (
            "reading",
            [{"kind": "blog", "title": "t", "url": "data:text/html,<script>alert(1)</script>"}],
            "does not match",
        ),
        (
            "lineage",
            [
                {
                    "from": 'x"><svg onload=alert(1)>',
                    "to": "a",
                    "type": "uses",
                    "why": {"en": "a", "zh-Hant": "b"},
                    "evidence": "e",
                    "basis": "stated",
                }
            ],
            "does not match",
        ),
        ("bibtex", {"type": "article", "key": 'k"><svg/onload=alert(1)>'}, "does not match"),
    ],
)
def test_payloads_in_keys_that_become_urls_or_ids_are_refused(key, value, message):
    data = {"id": "a", "title": "T", "authors": ["A B"], "year": 2000, key: value}
    record, problems = parse_record(
        "papers/a.yaml", yaml.safe_dump(data, allow_unicode=True).encode()
    )
    assert record is None and problems and all(message in p.message for p in problems), problems
