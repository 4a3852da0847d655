"""The glossary: complete, Traditional, valid, and consistent with the records."""

from __future__ import annotations

import pytest

import kb
from kb.errors import ValidationFailed
from kb.knowledge.glossary import (
    GlossaryEntry,
    inconsistencies,
    load_glossary,
    parse_glossary,
    self_inconsistencies,
)
from kb.knowledge.schema import Paper

from .conftest import ROOT

# Characters OpenCC s2t rewrites although they are the standard Taiwan forms:
# 布 in 分布 (the Ministry of Education's preferred form; s2t gives 佈), 群 (s2t gives the
# Hong Kong form 羣), 台 (everyday Taiwan form of 臺, as in 一台機器).
TAIWAN_FORMS = {"布", "群", "台"}


@pytest.fixture(scope="module")
def glossary() -> list[GlossaryEntry]:
    return load_glossary(ROOT)


def entry(en: str, zh: str, variants: list[str], exceptions: list[str] = ()) -> GlossaryEntry:
    return GlossaryEntry.model_validate(
        {
            "en": en,
            "zh-Hant": zh,
            "definition": {"en": "d", "zh-Hant": "定"},
            "variants": variants,
            "exceptions": list(exceptions),
        }
    )


def test_glossary_has_150_bilingual_defined_terms(glossary):
    assert len(glossary) >= 150
    for e in glossary:
        assert e.en and e.zh_hant and e.definition.en and e.definition.zh_hant, e.en
        assert "\n" not in e.definition.en + e.definition.zh_hant, (
            f"{e.en}: a definition is one line"
        )


def test_every_paper_exists(glossary):
    ids = {p.stem for p in (ROOT / "papers").glob("*.yaml")}
    assert {e.paper for e in glossary if e.paper} <= ids
    assert sum(1 for e in glossary if e.paper) >= 50  # the ideas the KB's papers introduced


def test_renderings_and_definitions_are_traditional(glossary):
    from opencc import OpenCC

    s2t = OpenCC("s2t")
    bad = []
    for e in glossary:
        for text in (e.zh_hant, e.definition.zh_hant):
            diff = {
                (a, b) for a, b in zip(text, s2t.convert(text)) if a != b and a not in TAIWAN_FORMS
            }
            bad += [f"{e.en}: {a}→{b}" for a, b in sorted(diff)]
    assert not bad, "\n".join(bad)


def test_no_rendering_is_listed_as_a_variant(glossary):
    renderings = {e.zh_hant for e in glossary}
    assert not [(e.en, v) for e in glossary for v in e.variants if v in renderings]


def test_a_planted_variant_is_flagged():
    paper = Paper(
        id="demo",
        title="Demo",
        authors=["A. Author"],
        year=2020,
        summary={"overview": {"en": "-", "zh-Hant": "一個卷積神經網絡與一個演算法。"}},
        concepts=[{"id": "c", "name": {"en": "c", "zh-Hant": "神經網絡"}}],
    )
    base = type("Base", (), {"papers": {"demo": paper}})()
    found = inconsistencies(
        base,
        [
            entry("neural network", "神經網路", ["神經網絡"]),
            entry("convolutional neural network", "卷積神經網路", ["卷積神經網絡"]),
            entry("algorithm", "演算法", ["算法"]),
        ],
    )
    assert found == [
        "papers/demo.yaml › summary.overview: uses '卷積神經網絡' for 'convolutional neural network'; "
        "the glossary says '卷積神經網路'",
        "papers/demo.yaml › concepts[0].name: uses '神經網絡' for 'neural network'; the glossary says '神經網路'",
    ]


def test_the_records_use_the_glossary_renderings(glossary):
    assert inconsistencies(kb.load(ROOT), glossary) == []


def test_the_glossary_uses_its_own_renderings(glossary):
    assert self_inconsistencies(glossary) == []


@pytest.mark.parametrize(
    "en, zh, variant",
    [
        ("distribution", "分布", "分佈"),
        ("sampling", "取樣", "採樣"),
        ("upsampling", "上取樣", "上採樣"),
        ("activation function", "活化函數", "激勵函數"),
        ("hierarchical softmax", "階層式 softmax", "層級式"),
        ("ensemble", "集成", "整體模型"),
        ("text", "文字", "文本"),
        ("interaction", "交互作用", "交互"),
    ],
)
def test_the_house_renderings_of_issue_15(glossary, en, zh, variant):
    by_en = {e.en: e for e in glossary}
    assert by_en[en].zh_hant == zh and variant in by_en[en].variants


def test_variants_are_checked_everywhere_but_legitimate_words_pass():
    paper = Paper(
        id="demo",
        title="Demo",
        authors=["A. Author"],
        year=2020,
        summary={"overview": {"en": "-", "zh-Hant": "論文本身用了文本。"}},
        passages=[{"quote": "Q.", "section": "§1", "translation": "機率分佈。"}],
        runnable={
            "id": "demo",
            "gate": {"metric": "accuracy", "op": ">=", "value": 0.9},
            "gate_text": {"en": "-", "zh-Hant": "上採樣後的準確率。"},
        },
    )
    base = type("Base", (), {"papers": {"demo": paper}})()
    glossary = [
        entry("text", "文字", ["文本"], ["論文本身"]),
        entry("distribution", "分布", ["分佈"]),
        entry("upsampling", "上取樣", ["上採樣"]),
        entry("sampling", "取樣", ["採樣"]),
    ]
    assert [x.split(":")[0] for x in inconsistencies(base, glossary)] == [
        "papers/demo.yaml › summary.overview",  # 文本 once: 論文本身 is not counted
        "papers/demo.yaml › passages[0].translation",
        "papers/demo.yaml › runnable.gate_text",  # 上採樣, the longer variant, only
    ]


def test_an_exception_must_hold_a_variant():
    text = "- {en: x, zh-Hant: 叉, definition: {en: d, zh-Hant: 定}, variants: [乂], exceptions: [叉子]}\n"
    with pytest.raises(ValidationFailed) as err:
        parse_glossary(text, set())
    assert [p.message for p in err.value.problems] == [
        "exception '叉子' holds none of the variants"
    ]


BROKEN = """\
- en: attention mechanism
  zh-Hant: 注意力機制
  definition: {en: Weighting inputs by relevance., zh-Hant: 依相關程度加權輸入。}
  paper: attention
- en: Attention Mechanism
  zh-Hant: 注意機制
  definition: {en: The same again., zh-Hant: 又一次。}
  paper: bret
- en: no rendering
  definition: {en: Missing its zh-Hant., zh-Hant: 缺中文。}
"""


def test_broken_glossary_gives_exact_problems(tmp_path):
    (tmp_path / "papers").mkdir()
    for pid in ("attention", "bert"):
        (tmp_path / "papers" / f"{pid}.yaml").write_text("", encoding="utf-8")
    (tmp_path / "kb" / "data").mkdir(parents=True)
    (tmp_path / "kb" / "data" / "glossary.yaml").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ValidationFailed) as err:
        load_glossary(tmp_path)
    assert [str(p) for p in err.value.problems] == [
        "kb/data/glossary.yaml:5:3: Paper(id=?) › [1].en: duplicate term 'Attention Mechanism' (first on line 1)",
        "kb/data/glossary.yaml:8:3: Paper(id=?) › [1].paper: unknown paper 'bret' (did you mean 'bert'?)",
        "kb/data/glossary.yaml:9:3: Paper(id=?) › [2].zh-Hant: required field is missing",
    ]


def test_glossary_yaml_errors_have_positions():
    with pytest.raises(ValidationFailed) as err:
        parse_glossary("- en: a\n  en: b\n", set())
    assert [str(p) for p in err.value.problems] == [
        "kb/data/glossary.yaml:2:3: Paper(id=?) › en: duplicate key 'en' (first on line 1)"
    ]


def test_no_glossary_file_means_none(tmp_path):
    assert load_glossary(tmp_path) is None
