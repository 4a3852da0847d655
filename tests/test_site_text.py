"""What a reader sees in the built fixture site is right: display formulas are blocks KaTeX
typesets (no `$` left in the text), paper ids in prose link to their pages, keys render, and
search result titles carry no zero-width spaces."""

from __future__ import annotations

import json
import re

from kb.site.markdown import md


def test_display_formula_after_a_line_of_text_is_its_own_block():
    out = md("The sum is\n$$a + b,$$\nwhich is small.")
    assert out.splitlines() == ["The sum is", "", "$$a + b,$$", "", "which is small."]


def test_fixture_pages_have_no_display_math_left_as_text(site_project):
    for page in (site_project / "site" / "papers").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        text = re.sub(
            r"(?s)<(script|style|code|pre)\b.*?</\1>|<[^>]+class=\"arithmatex\".*?</(div|span)>",
            "",
            html,
        )
        assert "$$" not in re.sub(r"<[^>]+>", "", text), page.name


def test_paper_ids_in_prose_link_to_their_pages(site_project):
    html = (site_project / "site" / "papers" / "mlm.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="attn.html"><code>attn</code></a>', html)  # English and 中文 tabs
    assert len(re.findall(r'<a href="attn.html"><code>attn</code></a>', html)) >= 2
    assert "<code>chosen</code>" in html  # not an id: stays code


def test_search_titles_have_no_zero_width_spaces_but_chinese_titles_stay_findable(site_project):
    index = json.loads((site_project / "site" / "search" / "search_index.json").read_text())
    assert all("\u200b" not in d["title"] for d in index["docs"])
    concept = next(d for d in index["docs"] if d["location"] == "concepts/mlm/masked-lm.html")
    assert "遮蔽語言模型" in concept["title"] and "遮蔽" in concept["text"]
