"""Content checks on the real records: the course notes are complete, bilingual and ours."""

from __future__ import annotations

import itertools
import re

import pytest
import yaml

import kb
from kb.knowledge.glossary import load_glossary, zh_texts
from kb.knowledge.schema import SUMMARY_SECTIONS

from .conftest import DATA, ROOT
from .test_glossary import TAIWAN_FORMS  # 分布's 布 is the Ministry of Education form


@pytest.fixture(scope="module")
def base():
    return kb.load(ROOT, strict=True)


def bilingual_texts(p):
    """Every (field path, language, text) of a record's prose."""
    out = []
    if p.summary:
        for s in ("overview", *SUMMARY_SECTIONS):
            b = getattr(p.summary, s)
            if b:
                out += [(f"summary.{s}", "en", b.en), (f"summary.{s}", "zh-Hant", b.zh_hant)]
    for i, e in enumerate(p.lineage):
        out += [
            (f"lineage[{i}].why", "en", e.why.en),
            (f"lineage[{i}].why", "zh-Hant", e.why.zh_hant),
        ]
    for i, c in enumerate(p.concepts):
        if c.description:
            out += [
                (f"concepts[{i}].description", "en", c.description.en),
                (f"concepts[{i}].description", "zh-Hant", c.description.zh_hant),
            ]
    out += [
        (f"passages[{i}].translation", "zh-Hant", q.translation) for i, q in enumerate(p.passages)
    ]
    return out


def test_there_are_twenty_course_papers_in_study_order(base):
    codes = [p.curriculum for p in base.course()]
    assert codes == [f"{w:02d}{h}" for w in range(1, 11) for h in "ab"]


def test_every_paper_of_the_brief_has_a_record(base):
    brief = yaml.safe_load((DATA / "course" / "papers.yaml").read_text(encoding="utf-8"))
    ids = {e["id"] for group in ("core_cv", "core_nlp", "context") for e in brief[group]}
    assert ids - set(base.records) == set()


def test_course_papers_have_three_to_six_translated_passages(base):
    for p in base.course():
        assert 3 <= len(p.passages) <= 6, p.id
        assert all(q.translation.strip() and q.section.strip() for q in p.passages), p.id


def test_every_context_paper_has_a_bilingual_overview_and_bibtex(base):
    for p in base.papers.values():
        assert p.summary and p.summary.overview.en and p.summary.overview.zh_hant, p.id
        assert p.bibtex, p.id


def test_every_study_slot_links_the_course_reading(base):
    slots = yaml.safe_load(
        (DATA / "course" / "curriculum_resources.yaml").read_text(encoding="utf-8")
    )
    by_code = {p.curriculum: p for p in base.course()}
    for code, slot in slots.items():
        urls = {r.url for r in by_code[code].reading}
        missing = [r["url"] for r in slot["resources"] if r["url"] not in urls]
        assert not missing, (code, missing)


def test_no_two_records_share_a_paragraph(base):
    seen: dict[str, str] = {}
    for p in base.papers.values():
        for where, _lang, text in bilingual_texts(p):
            for para in (x.strip() for x in text.split("\n\n")):
                if len(para) < 80:
                    continue
                assert seen.setdefault(para, f"{p.id}.{where}") == f"{p.id}.{where}", (
                    para[:60],
                    seen[para],
                )


def test_zh_hant_text_is_traditional(base):
    from opencc import OpenCC

    s2t = OpenCC("s2t")
    bad = []
    for p in base.papers.values():
        for where, text in zh_texts(p):  # every zh-Hant field, gate texts and concept names too
            converted = s2t.convert(text)
            diff = {
                a + "→" + b for a, b in zip(text, converted) if a != b and a not in TAIWAN_FORMS
            }
            if diff:
                bad.append(f"{p.id}.{where}: {sorted(diff)}")
    assert not bad, "\n".join(bad)


def test_chinese_text_is_in_the_zh_fields(base):
    han = re.compile(r"[\u4e00-\u9fff]")
    for p in base.papers.values():
        for where, lang, text in bilingual_texts(p):
            if lang == "zh-Hant":
                assert han.search(text), f"{p.id}.{where} has no Chinese"


def test_every_edge_has_evidence_and_both_languages(base):
    for p in base.papers.values():
        for e in p.lineage:
            assert e.evidence.strip() and e.why.en.strip() and e.why.zh_hant.strip(), (
                p.id,
                e.from_,
                e.to,
            )


@pytest.mark.parametrize(
    "a, b, chain",
    [
        ("word2vec/cbow", "bert/mlm", ["word2vec/cbow", "bert/mlm"]),
        (
            "word2vec/skip-gram",
            "bert/nsp",
            ["word2vec/skip-gram", "skip-thought", "quick-thought", "bert/nsp"],
        ),
    ],
)
def test_the_course_chains(base, a, b, chain):
    nodes = kb.path(base.graph, a, b)
    assert [n if n in chain else n.split("/")[0] for n in nodes] == chain
    assert all(s["why"]["en"] and s["why"]["zh-Hant"] for s in kb.steps(base.graph, nodes))


def test_plan_for_bert_reads_transformer_and_word2vec_first(base):
    order = kb.plan(base.graph, "bert")
    assert order[-1] == "bert" and {"transformer", "word2vec"} <= set(order[:-1])


def test_graph_is_acyclic(base):
    import networkx as nx

    assert nx.is_directed_acyclic_graph(base.graph)
    assert nx.is_directed_acyclic_graph(kb.paper_graph(base.graph))


def test_ids_are_unique_across_papers_and_concepts(base):
    ids = [n for n in base.graph.nodes]
    assert len(ids) == len(set(ids))
    assert not list(itertools.islice((i for i in ids if i != i.lower()), 1))


# --- Taiwan typography: full-width clause punctuation and brackets next to Chinese ---------
# The rules (CONTRIBUTING, "Words"): in zh-Hant text ，：；？！（） are full-width wherever a
# Chinese character (or a full-width mark) is their neighbour, spaces aside; no space after a
# full-width mark, none before a closing one or before an opening bracket. LaTeX, code spans,
# URLs and link targets keep their own punctuation, and so do Latin runs whose neighbours are
# Latin or digits: "3, 4, 6" in a table row, "(byte-pair encoding, BPE)" inside （）, 圖 1(a).

_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_KEEP = re.compile(
    r"\$\$.*?\$\$|(?<!\\)\$[^$]+?(?<!\\)\$|(`+).*?\1|\]\([^)]*\)|<https?://[^>]*>"
    r"|https?://[^\s)）]+",
    re.S,
)
_SUBFIGURE = re.compile(r"(?<=\d)\([a-z]\)")  # 圖 1(a): a figure's own label
_HALF_NEXT_TO_CJK = re.compile(
    rf"(?<=[{_CJK}])\s*[,;:?!()]|[,;:?!()](?=\s*[{_CJK}])"
    r"|(?<=\S)[,;](?=[A-Za-z])"
)  # VGG-16,COCO: a narrow Chinese comma
_SPACE = re.compile(
    r"(?<=[，。、；：？！（）「」『』])[ \t]+(?=[^\s|])"  # after a full-width mark
    r"|(?<=[^\s|])[ \t]+(?=[，。、；：？！）」』])"  # before a closing one
    r"|(?<=[^\s|>*+-])[ \t]+(?=[（「『])"
)  # before an opening one


def typography_problems(text: str) -> list[str]:
    """Half-width ，：；？！（） next to Chinese, and spaces around full-width marks, in context."""
    kept = _KEEP.sub(lambda m: "\0" * len(m.group()), _SUBFIGURE.sub("\0\0\0", text))
    out = []
    for m in _HALF_NEXT_TO_CJK.finditer(kept):
        i = m.end() - 1 if m.group()[-1] in ",;:?!()" else m.start()
        out.append(f"half-width {kept[i]!r} in {text[max(0, i - 6) : i + 7]!r}")
    out += [
        f"space in {text[max(0, m.start() - 6) : m.end() + 6]!r}" for m in _SPACE.finditer(kept)
    ]
    return out


@pytest.mark.parametrize(
    "text, problems",
    [
        ("線性整流 (rectified linear unit) 讓訓練變快,見(§3.1)。", 5),
        ("首先， BERT 模型 （base） 很大 ；", 4),
        ("把 VGG-16 換成 ResNet-101,COCO 的 mAP 提高", 1),
        ("每階段 3, 4, 6, 3 個區塊（表 1），$f(x, y)$：見 `a(b); c` 與圖 1(a)。", 0),
        (
            "位元組對編碼（byte-pair encoding, BPE）見 https://arxiv.org/abs/1508.07909 或 [這裡](#x)。",
            0,
        ),
        ("**核心想法。** 把表格寫成\n\n| 模型 | 值（x） |\n|---|---|\n", 0),
    ],
)
def test_typography_rules(text, problems):
    assert len(typography_problems(text)) == problems, typography_problems(text)


def test_zh_hant_uses_full_width_punctuation_next_to_chinese(base):
    bad = []
    for p in base.papers.values():
        for where, text in zh_texts(p):
            bad += [f"{p.id}.{where}: {x}" for x in typography_problems(text)]
        for i, r in enumerate(p.reading):  # Chinese link labels: "ResNet 論文翻譯（網路資源）"
            if re.search(f"[{_CJK}]", r.title):
                bad += [f"{p.id}.reading[{i}].title: {x}" for x in typography_problems(r.title)]
    for e in load_glossary(ROOT):
        for text in (e.zh_hant, e.definition.zh_hant):
            bad += [f"glossary {e.en}: {x}" for x in typography_problems(text)]
    assert not bad, f"{len(bad)} problems:\n" + "\n".join(bad)


def test_no_record_text_holds_a_control_character():
    """A backslash in a double-quoted YAML string is an escape ("\\ell" there is ESC + "ll"):
    LaTeX in such a string must double its backslashes."""

    def strings(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)

    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    bad = [
        f"{path.name}: {t[:60]!r}"
        for path in sorted((ROOT / "papers").glob("*.yaml"))
        for t in strings(yaml.safe_load(path.read_text(encoding="utf-8")))
        if control.search(t)
    ]
    assert bad == []
