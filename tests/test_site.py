"""The built study site, without a browser: pages, links, diagrams, explorer data, search, offline."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import networkx as nx
import pytest
import yaml

from kb.knowledge.glossary import load_glossary
from kb.site.diagram import local_svg
from kb.site.explorer import graph_data
from tests.conftest import ROOT


class Refs(HTMLParser):
    """Every link target and every id of one HTML file."""

    def __init__(self):
        super().__init__()
        self.refs, self.ids, self.external = [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("href", "src", "xlink:href"):
            v = a.get(key)
            if v is None or v.startswith(("mailto:", "data:", "javascript:")):
                continue
            if urlsplit(v).scheme or v.startswith("//"):
                self.external.append((tag, v))
            else:
                self.refs.append(v)


def parse(path: Path) -> Refs:
    r = Refs()
    r.feed(path.read_text(encoding="utf-8"))
    return r


@pytest.fixture(scope="module")
def site(site_project) -> Path:
    return site_project / "site"


@pytest.fixture(scope="module")
def parsed(site) -> dict[Path, Refs]:
    return {p: parse(p) for p in sorted(site.rglob("*.html"))}


def test_every_paper_and_concept_has_a_page(site_project, site):
    from kb import load

    base = load(site_project)
    for node, d in base.graph.nodes(data=True):
        rel = f"papers/{node}.html" if d["kind"] == "paper" else f"concepts/{node}.html"
        assert (site / rel).is_file(), rel
    for page in (
        "index",
        "course",
        "papers/index",
        "concepts/index",
        "lineage",
        "timeline",
        "tags",
        "glossary",
        "runnables",
        "bibliography",
    ):
        assert (site / f"{page}.html").is_file(), page
    assert (site / "papers.bib").read_text().count("@") == len(base.papers)


def test_no_broken_links_or_anchors(site, parsed):
    broken = []
    for page, refs in parsed.items():
        for ref in refs.refs:
            path, _, frag = ref.partition("#")
            base = (
                site if path.startswith("/") else page.parent
            )  # 404.html links from the site's root
            target = (base / unquote(path.lstrip("/"))).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)} → {ref}")
            elif frag and target.suffix == ".html" and frag not in parsed[target].ids:
                broken.append(f"{page.relative_to(site)} → {ref} (no anchor)")
    assert not broken, "\n".join(broken)


def test_nothing_is_loaded_from_another_site(site, parsed):
    """Offline: scripts, styles, fonts and images are all local (links to papers may leave)."""
    loaded = [
        (p.name, v)
        for p, r in parsed.items()
        for tag, v in r.external
        if tag in ("script", "link", "img")
    ]
    assert not [x for x in loaded if not x[1].startswith("https://arxiv.org")], loaded
    css = (site / "assets" / "vendor" / "katex" / "katex.min.css").read_text()
    assert "url(fonts/KaTeX_Main-Regular.woff2)" in css and "http" not in css
    assert (site / "assets" / "vendor" / "katex" / "fonts" / "KaTeX_Main-Regular.woff2").is_file()
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "!python"))
    assert cfg["theme"]["font"] is False
    assert all(not urlsplit(u).scheme for u in cfg["extra_javascript"] + cfg["extra_css"])


def test_vendored_libraries_come_with_their_licenses(site):
    for package, main in (("cytoscape", "cytoscape.min.js"), ("katex", "katex.min.js")):
        assert (site / "assets" / "vendor" / package / main).stat().st_size > 10_000
        assert "MIT" in (site / "assets" / "vendor" / package / "LICENSE").read_text()
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert {"node_modules/cytoscape", "node_modules/katex"} <= set(lock["packages"])


def test_paper_page_has_both_languages_diagram_and_math(site):
    html = (site / "papers" / "attn.html").read_text()
    assert "English" in html and "中文" in html and "tabbed-set" in html
    assert "注意力機制" in html
    svg = re.search(r"<svg[^>]*kb-lineage.*?</svg>", html, re.S).group(0)
    for href in (
        'href="../papers/c.html"',
        'href="../concepts/a/x.html"',
        'href="../concepts/mlm/masked-lm.html"',
        'href="../concepts/attn/additive.html"',
    ):
        assert href in svg
    # labels read along the arrow, from the source's side: "c —baseline for→ attn"
    assert ">baseline for<" in svg and ">inspires<" in svg and ">compares-with<" not in svg
    assert 'class="arithmatex">\\(' in html


def test_concept_page_has_diagram(site):
    html = (site / "concepts" / "mlm" / "masked-lm.html").read_text()
    assert (
        "遮蔽語言模型" in html
        and 'class="kb-lineage"' in html
        and 'href="../../concepts/d/m.html"' in html
    )


def test_diagram_is_deterministic_and_escaped():
    G = nx.DiGraph()
    G.add_node("p", kind="paper", title="<script>alert(1)</script>", year=2001)
    G.add_node("q", kind="paper", title='Q "&" R', year=2002)
    G.add_node("q/c", kind="concept", paper="q", year=2002, name={"en": "C<", "zh-Hant": "c"})
    G.add_edge("q/c", "q", type="part-of")
    up = [{"from": "p", "to": "q/c", "type": "extends"}]
    a = local_svg(G, "q", up, [], lambda n: f"{n}.html?a=1&b=2")
    assert a == local_svg(G, "q", list(up), [], lambda n: f"{n}.html?a=1&b=2")
    assert (
        "<script>" not in a
        and "&lt;script&gt;" in a
        and "C&lt;" in a
        and "Q &quot;&amp;&quot; R" in a
    )
    assert 'xlink:href="p.html?a=1&amp;b=2"' in a


def test_diagram_packs_many_neighbours_into_year_columns():
    G = nx.DiGraph()
    G.add_node("hub", kind="paper", title="Hub", year=2000)
    down = []
    for i in range(20):
        G.add_node(f"n{i:02d}", kind="paper", title=f"N{i}", year=2001 + i)
        down.append({"from": "hub", "to": f"n{i:02d}", "type": "uses"})
    svg = local_svg(G, "hub", [], down, lambda n: n)
    xs = {float(x) for x in re.findall(r'<rect x="([\d.]+)"', svg)}
    assert len(xs) == 1 + 3  # the centre and three columns of at most 8


def test_explorer_data_covers_the_graph(site_project, site):
    from kb import load

    G = load(site_project).graph
    data = json.loads((site / "assets" / "lineage.json").read_text())
    assert {n["id"] for n in data["nodes"]} == set(G.nodes)
    assert len(data["edges"]) == G.number_of_edges()
    assert all((site / n["url"]).is_file() for n in data["nodes"])
    by = {n["id"]: n for n in data["nodes"]}
    assert (
        by["a"]["x"] < by["b"]["x"] < by["mlm"]["x"] and by["c"]["x"] == by["e"]["x"]
    )  # x by year
    assert by["attn"]["y"] != by["a"]["y"] or by["attn"]["track"] == by["a"]["track"]
    assert data["years"] == [2013, 2019]
    html = (site / "lineage.html").read_text()
    assert (
        'id="kb-explorer"' in html
        and 'value="uses"' in html
        and 'data-graph="assets/lineage.json"' in html
    )


def test_explorer_layout_is_linear_and_sorted():
    G = nx.DiGraph()
    for i in range(300):
        G.add_node(
            f"p{i}",
            kind="paper",
            title=f"P{i}",
            year=1990 + i % 30,
            track=("cv", "nlp", None)[i % 3],
        )
    data = graph_data(G, lambda n: n)
    assert [n["id"] for n in data["nodes"]] == sorted(G.nodes)
    assert len({(n["x"], n["y"]) for n in data["nodes"]}) == 300
    assert data["tracks"] == ["cv", "nlp", "other"]


def search(site: Path, query: str) -> set[str]:
    """Pages whose indexed words include every word of the query, split as the site splits it."""
    import jieba

    index = json.loads((site / "search" / "search_index.json").read_text())
    sep = re.compile(index["config"]["separator"].replace("\\u200b", "\u200b"))
    words = [
        w.lower()
        for part in sep.split(query)
        for w in (jieba.cut(part) if re.search(r"[\u4e00-\u9fff]", part) else [part])
        if w.strip()
    ]
    hits = set()
    for doc in index["docs"]:
        have = {
            w.lower()
            for w in sep.split(re.sub(r"<[^>]+>", " ", doc["title"] + " " + doc["text"]))
            if w
        }
        if all(w in have for w in words):
            hits.add(doc["location"].split("#")[0])
    return hits


@pytest.mark.parametrize(
    "query, page",
    [
        ("注意力", "papers/attn.html"),
        ("注意力機制", "glossary.html"),
        ("遮蔽語言模型", "papers/mlm.html"),
        ("遮蔽語言模型", "concepts/mlm/masked-lm.html"),
        ("masked language model", "papers/mlm.html"),
        ("masked language model", "concepts/mlm/masked-lm.html"),
    ],
)
def test_search_index_finds_chinese_and_english(site, query, page):
    assert page in search(site, query)


def test_search_index_is_segmented_for_chinese(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    assert index["config"]["lang"] == ["en", "zh"]
    assert any("遮蔽\u200b語言\u200b模型" in d["text"] for d in index["docs"])


def test_runnables_page_and_results(site):
    page = (site / "runnables.html").read_text()
    assert "not yet measured on GPU" in page and "accuracy = 0.9500" in page
    assert "Not yet measured on GPU." in (site / "papers" / "mlm.html").read_text()


def test_tags_concepts_and_glossary_pages(site):
    tags = (site / "tags.html").read_text()
    assert 'id="tag-attention"' in tags and 'id="track-nlp"' in tags
    assert "遮蔽語言模型" in (site / "concepts" / "index.html").read_text()
    glossary = (site / "glossary.html").read_text()
    assert (
        "注意力機制" in glossary and "感知器" in glossary and 'href="papers/attn.html"' in glossary
    )
    assert "&lt;b&gt;not&lt;/b&gt;" in glossary and "a table pipe" in glossary
    assert 'href="glossary.html"' in (site / "index.html").read_text()  # in the nav too


def test_no_glossary_page_without_the_file(tmp_path):
    from kb import load
    from kb.site.render import render
    from tests.site_project import make_project

    project = make_project(tmp_path / "p", glossary=False)
    assert load_glossary(project) is None
    pages = render(load(project))
    assert "glossary.md" not in pages and "glossary.md" not in pages["index.md"]


def test_read_before_lists_near_sources_in_plan_order_and_points_to_the_whole_plan(tmp_path):
    """A chain a → b → c → d: d's page lists b and c (two steps up), then says a third one exists."""
    import shutil

    import kb
    from kb.site.render import render

    project = tmp_path / "p"
    (project / "papers").mkdir(parents=True)
    shutil.copyfile(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(ROOT / "site_src" / "templates", project / "site_src" / "templates")
    for i, (pid, src) in enumerate([("a", None), ("b", "a"), ("c", "b"), ("d", "c")]):
        edge = (
            (
                f"lineage:\n  - {{from: {src}, to: {pid}, type: extends, why: {{en: x, zh-Hant: 甲}}, "
                f"evidence: x, basis: stated}}\n"
            )
            if src
            else ""
        )
        (project / "papers" / f"{pid}.yaml").write_text(
            f"id: {pid}\ntitle: Paper {pid.upper()}\nauthors: [A B]\nyear: {2000 + i}\n{edge}",
            encoding="utf-8",
        )
    pages = render(kb.load(project))
    d = pages["papers/d.md"].split("## Read before this")[1]
    assert (
        "Paper B" in d
        and "Paper C" in d
        and d.index("Paper B") < d.index("Paper C")
        and "Paper A" not in d
    )
    assert "all 3 in order: `kb plan d`" in d and "全部 3 篇" in d
    c = pages["papers/c.md"].split("## Read before this")[1]
    assert "Paper A" in c and "Paper B" in c and "kb plan" not in c


# --- lineage in words, one language per tab (#17) -----------------------------------------


def _tab_blocks(html: str, marker: str) -> tuple[str, str]:
    """The English and 中文 blocks of the tab set that holds ``marker``."""
    start = html.index(marker)
    tabs = html.rindex('<div class="tabbed-set', 0, start)
    blocks = re.findall(
        r'<div class="tabbed-block">(.*?)</div>\s*(?=<div class="tabbed-block">|</div>)',
        html[tabs:],
        re.S,
    )[:2]
    return blocks[0], blocks[1]


def test_paper_page_lineage_has_one_language_per_tab_and_true_sentences(site):
    html = (site / "papers" / "attn.html").read_text()
    en, zh = _tab_blocks(html, "Came from")
    assert "<strong>Came from</strong>" in en and "<strong>來源</strong>" in zh
    # c → attn is compares-with: "attn compares itself with c", never "c compares-with attn"
    assert (
        '<strong>attn</strong> compares itself with <a href="c.html">c</a>: Compared &lt;against&gt; C &amp; co.'
        in en
    )
    assert '<strong>attn</strong> 與 <a href="c.html">c</a> 比較：與 C 比較。' in zh
    assert '<a href="../concepts/attn/additive.html">attn/additive</a> is inspired by' in en
    assert "<small>(interpretation; §2)</small>" in en and "<small>（課程詮釋；§2）</small>" in zh
    assert "與 C 比較" not in en and "Compared &lt;against&gt;" not in zh
    assert not re.search(
        r"[\u4e00-\u9fff]", re.sub(r"<[^>]+>", "", en)
    )  # no Chinese in the English tab


def test_concept_page_lineage_has_one_language_per_tab(site):
    html = (site / "concepts" / "attn" / "additive.html").read_text()
    en, zh = _tab_blocks(html, "Came from")
    assert (
        '<strong>attn/additive</strong> is inspired by <a href="../a/x.html">a/x</a>: x suggested scoring positions.'
        in en
    )
    assert (
        '<strong>attn/additive</strong> 受 <a href="../a/x.html">a/x</a> 啟發：x 啟發了為位置打分數。'
        in zh
    )
    assert "啟發了為位置" not in en and "suggested scoring" not in zh


def test_diagram_words_come_in_both_languages_for_the_tabs_to_pick():
    G = nx.DiGraph()
    G.add_node("gpt", kind="paper", title="GPT", year=2018)
    G.add_node("bert", kind="paper", title="BERT", year=2018)
    G.add_node("xlnet", kind="paper", title="XLNet", year=2019)
    up = [
        {
            "from": "gpt",
            "to": "bert",
            "type": "extends",
            "why": {"en": "Keeps <GPT>.", "zh-Hant": "保留 GPT。"},
        }
    ]
    down = [{"from": "bert", "to": "xlnet", "type": "compares-with"}]
    svg = local_svg(G, "bert", up, down, lambda n: n)
    groups = re.findall(r'<g class="kb-lang-(en|zh)" lang="([^"]+)">(.*?)</g>', svg, re.S)
    assert [(a, b) for a, b, _ in groups] == [("en", "en"), ("zh", "zh-Hant")] * 2
    en = "".join(g for a, _, g in groups if a == "en")
    zh = "".join(g for a, _, g in groups if a == "zh")
    assert (
        "<title>bert extends gpt: Keeps &lt;GPT&gt;.</title>" in en and ">extended by</text>" in en
    )
    assert "<title>xlnet compares itself with bert</title>" in en and ">baseline for</text>" in en
    assert "<title>bert 延伸 gpt 的做法：保留 GPT。</title>" in zh and ">被…延伸</text>" in zh
    assert ">是…的比較對象</text>" in zh and not re.search(r"[\u4e00-\u9fff]", en)


def test_kb_css_shows_the_diagram_words_of_the_chosen_tab():
    css = (ROOT / "site_src" / "templates" / "assets" / "kb.css").read_text()
    assert ".kb-lineage .kb-lang-zh { display: none; }" in css
    assert (
        ".md-content:has(.tabbed-set > input:nth-of-type(2):checked) .kb-lineage .kb-lang-en { display: none; }"
        in css
    )


def _every_type_project(tmp_path):
    """A hub paper with one source paper per edge type, and the hub feeding one paper."""
    import shutil

    from kb.knowledge.schema import EDGE_TYPES

    project = tmp_path / "p"
    (project / "papers").mkdir(parents=True)
    shutil.copyfile(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(ROOT / "site_src" / "templates", project / "site_src" / "templates")
    types = [t for t in EDGE_TYPES if t != "part-of"]
    for i, t in enumerate(types):
        (project / "papers" / f"s-{t}.yaml").write_text(
            f"id: s-{t}\ntitle: S {t}\nauthors: [A B]\nyear: {2000 + i}\n", encoding="utf-8"
        )
    edges = "".join(
        f"  - {{from: s-{t}, to: hub, type: {t}, why: {{en: W{i}., zh-Hant: 理由{i}。}}, "
        f"evidence: x, basis: stated}}\n"
        for i, t in enumerate(types)
    )
    (project / "papers" / "hub.yaml").write_text(
        f"id: hub\ntitle: Hub\nauthors: [A B]\nyear: 2020\nlineage:\n{edges}", encoding="utf-8"
    )
    return project, types


def test_every_edge_type_reads_true_on_both_ends_pages(tmp_path):
    """On the builder's page the builder is the subject; on the source's page the source is,
    in the passive (or its own verb): the hand-written wording of tests/test_lineage.py."""
    import kb
    from kb.site.render import render

    from .test_lineage import WORDING

    project, types = _every_type_project(tmp_path)
    pages = render(kb.load(project, strict=True))
    hub = pages["papers/hub.md"]
    en_tab, zh_tab = (
        hub.split('=== "中文"')[0].split('=== "English"')[-1],
        hub.split('=== "中文"')[1],
    )
    for i, t in enumerate(types):
        en_b, en_s, zh_b, zh_s = (
            w.replace("bert", "{B}").replace("gpt", "{S}") for w in WORDING[t]
        )
        link = f"[s-{t}](../papers/s-{t}.md)"
        assert f"- {en_b.format(B='**hub**', S=link)}: W{i}." in en_tab, t
        assert f"- {zh_b.format(B='**hub**', S=link)}：理由{i}。" in zh_tab, t
        src = pages[f"papers/s-{t}.md"]
        assert (
            f"- {en_s.format(S=f'**s-{t}**', B='[hub](../papers/hub.md)')}: W{i}."
            in src.split('=== "中文"')[0]
        ), t
        assert (
            f"- {zh_s.format(S=f'**s-{t}**', B='[hub](../papers/hub.md)')}：理由{i}。"
            in src.split('=== "中文"')[1]
        ), t


def test_bert_page_lineage_shows_one_language_per_tab():
    """The page the issue was found on: 'gpt —extends→ bert' and both languages in one line."""
    import kb
    from kb.site.render import render

    page = render(kb.load(ROOT), only={"bert"})["papers/bert.md"]
    lineage = page.split("## Lineage · 傳承")[1].split("\n## ")[0]
    en, zh = lineage.split('=== "English"')[1].split('=== "中文"')
    assert "- **bert** extends [gpt](../papers/gpt.md): BERT keeps GPT's recipe" in en
    assert "- **bert** 延伸 [gpt](../papers/gpt.md) 的做法：BERT 保留 GPT 的做法" in zh
    assert "- **bert** is a baseline for [xlnet](../papers/xlnet.md): " in en
    assert "- **bert** 是 [xlnet](../papers/xlnet.md) 的比較對象：" in zh
    assert "—*" not in lineage and "*→" not in lineage  # the old "gpt —*extends*→ bert"
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert not cjk.search(re.sub(r"<small>.*?</small>", "", en))  # evidence may quote anything
    assert all(cjk.search(line) for line in zh.splitlines() if line.strip().startswith("- "))


def test_explorer_page_says_how_an_arrow_reads(site):
    html = (site / "lineage.html").read_text()
    assert (
        'title="B extends A · B 延伸 A 的做法"' in html
        and 'title="B is inspired by A · B 受 A 啟發"' in html
    )
    assert "An arrow A → B means B builds on A" in html
