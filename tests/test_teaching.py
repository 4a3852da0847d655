"""Course pages teach (#14): every course paper has an intuition, a worked example and common
confusions in both languages, at least one figure of our own (an SVG that parses, alt text in
both languages) and at least one equation shown beside the runnable's lines that compute it.
The site puts them on the page; a symbol that leaves the runnable stops the build."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest

from kb.errors import KBError
from kb.site.code import excerpt, inline_svg

from .conftest import ROOT

BASE = __import__("kb").load(ROOT)
COURSE = sorted(p.id for p in BASE.papers.values() if p.curriculum)
SVG = "{http://www.w3.org/2000/svg}"


def test_the_course_has_its_twenty_papers():
    assert len(COURSE) == 20


@pytest.mark.parametrize("paper_id", COURSE)
def test_course_paper_teaches_in_both_languages(paper_id):
    t = BASE.papers[paper_id].teaching
    assert t is not None, f"papers/{paper_id}.yaml has no teaching block"
    for text in (t.intuition, t.worked_example, *t.confusions):
        assert len(text.en) >= 40 and len(text.zh_hant) >= 20
    assert re.search(r"\d", t.worked_example.en), "a worked example has numbers"
    assert 2 <= len(t.confusions) <= 4


@pytest.mark.parametrize("paper_id", COURSE)
def test_course_paper_figures_parse_and_carry_alt_text(paper_id):
    t = BASE.papers[paper_id].teaching
    assert t is not None and t.illustrations
    for f in t.illustrations:
        path = ROOT / "papers" / "figures" / f.file
        svg = ElementTree.parse(path).getroot()
        assert svg.tag == f"{SVG}svg" and svg.get("viewBox"), f.file
        assert svg.findall(f".//{SVG}text"), f"{f.file} has no labels"
        labels = " ".join("".join(t.itertext()) for t in svg.iter(f"{SVG}text"))
        assert re.search(r"[\u4e00-\u9fff]", labels) and re.search(r"[A-Za-z]", labels), (
            f"{f.file}: labels in both languages"
        )
        assert f.alt.en and re.search(r"[\u4e00-\u9fff]", f.alt.zh_hant)
        inline_svg(path, f.alt.en, f.alt.zh_hant)  # inert: no script, handler or outside link


@pytest.mark.parametrize("paper_id", COURSE)
def test_course_paper_equations_point_at_code_that_exists(paper_id):
    p = BASE.papers[paper_id]
    assert p.teaching is not None and p.teaching.code
    for c in p.teaching.code:
        e = excerpt(ROOT, c.runnable or p.runnable.id, c.symbol)
        assert e.end >= e.start and e.text.startswith(("def ", "class ", "@"))


def test_every_concept_code_symbol_exists():
    for p in BASE.papers.values():
        for c in p.concepts:
            if c.code:
                excerpt(ROOT, p.runnable.id, c.code, f"papers/{p.id}.yaml")


def test_a_symbol_that_left_the_runnable_stops_the_build_naming_the_field(tmp_path):
    import kb
    from kb.site.teaching import teaching_context
    from tests.site_project import make_project

    project = make_project(tmp_path / "p")
    rec = project / "papers" / "mlm.yaml"
    rec.write_text(
        rec.read_text(encoding="utf-8").replace("symbol: mask_tokens", "symbol: mask_token"),
        encoding="utf-8",
    )
    with pytest.raises(
        KBError,
        match=r"papers/mlm\.yaml › teaching\.code\[0\]\.symbol: "
        r"runnable/mlm\.py has no function or class 'mask_token' "
        r"\(did you mean 'mask_tokens'\?\)",
    ):
        teaching_context(kb.load(project), "mlm", "papers/mlm.md")


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        '<rect onload="alert(1)"/>',
        '<image href="https://example.com/x.png"/>',
        "<foreignObject><p>x</p></foreignObject>",
    ],
)
def test_a_figure_with_script_or_outside_reference_is_refused(tmp_path, payload):
    f = tmp_path / "bad.svg"
    f.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1">{payload}</svg>')
    with pytest.raises(KBError, match="is not allowed in a figure"):
        inline_svg(f, "a", "甲")


def test_inline_figure_has_both_alt_texts_and_no_blank_line(tmp_path):
    f = tmp_path / "ok.svg"
    f.write_text(
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1">'
        "\n\n<title>old</title><text>a · 甲</text></svg>\n"
    )
    out = inline_svg(f, "A & B", "甲與乙")
    assert out.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1" role="img"')
    assert "<title>A &amp; B</title>" in out and '<desc lang="zh-Hant">甲與乙</desc>' in out
    assert "old" not in out and "\n\n" not in out and "<?xml" not in out


def test_site_course_page_shows_figure_code_beside_equation_and_the_code_page(site_project):
    html = (site_project / "site" / "papers" / "mlm.html").read_text(encoding="utf-8")
    assert (
        'id="intuition' in html and 'id="common-confusions' in html and 'id="worked-example' in html
    )
    assert re.search(r'<figure class="kb-figure"[^>]*>\s*<svg[^>]*role="img"', html)
    block = html[html.index('class="kb-eqcode"') :]
    assert "\\tilde{x}_i" in block[:2000] and "mask_tokens" in block[:6000]
    assert 'href="../code/mlm.html#__codelineno-0-4"' in html  # the def's own line
    code = (site_project / "site" / "code" / "mlm.html").read_text(encoding="utf-8")
    assert 'id="__codelineno-0-4"' in code or 'name="__codelineno-0-4"' in code


def test_results_link_every_benchmark_they_score_to_its_glossary_entry():
    from kb.knowledge.glossary import load_glossary
    from kb.site.render import render
    from kb.site.teaching import bench_anchor

    pages = render(BASE, only=set(COURSE))
    glossary_page = render(BASE)["glossary.md"]
    benches = {t.en for t in load_glossary(ROOT) if t.benchmark}
    assert {
        "GLUE",
        "SQuAD",
        "MultiNLI",
        "BLEU",
        "top-5 error",
        "PASCAL VOC",
        "COCO",
        "mean IU",
        "perplexity",
        "mean average precision",
        "ImageNet",
    } <= benches
    for en in benches:  # each has a heading to link to
        assert "{#" + bench_anchor(en) + "}" in glossary_page, en
    linked = {
        pid: set(re.findall(r"glossary\.md#(bench-[\w-]+)", pages[f"papers/{pid}.md"]))
        for pid in COURSE
    }
    assert {"bench-glue", "bench-squad", "bench-multinli"} <= linked["bert"]
    assert {"bench-imagenet", "bench-top-5-error"} <= linked["resnet"]
    assert "bench-bleu" in linked["transformer"] and "bench-mean-iu" in linked["fcn"]
    # lstm's results are its own synthetic tasks: no public benchmark to explain
    assert [pid for pid, found in linked.items() if not found] == ["lstm"]
