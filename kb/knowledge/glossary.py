"""The glossary, ``kb/data/glossary.yaml``: one zh-Hant rendering per technical term.

Each entry has the term, its Taiwan-usage rendering, a one-line definition in both
languages, the paper that introduced it and the renderings our notes must not use
(``variants``: Simplified characters, mainland terms, mistranslations). The file is
optional: :func:`load_glossary` returns ``None`` without it and the site has no glossary
page. :func:`inconsistencies` finds the variants in the records' zh-Hant text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from ..errors import Problem, ValidationFailed, did_you_mean
from . import yamlio
from .loader import _message, dotted
from .schema import Bilingual, Slug, Strict, Text

PATH = Path("kb") / "data" / "glossary.yaml"
ZH_KEYS = {"zh-Hant", "translation"}  # the record keys whose values are zh-Hant text
GLOSSARY = PATH.as_posix()


class GlossaryEntry(Strict):
    """One term: its rendering, definition, origin and the renderings to avoid."""

    en: Text
    zh_hant: Text = Field(alias="zh-Hant")
    definition: Bilingual
    paper: Slug | None = Field(None, description="The KB paper that introduced it, if any.")
    variants: list[Text] = Field(
        default_factory=list, description="zh-Hant renderings our notes must not use."
    )
    aliases_en: list[Text] = Field(default_factory=list)
    exceptions: list[Text] = Field(
        default_factory=list,
        description=(
            "Correct words that contain a variant (論文本身 holds 文本); the check skips them."
        ),
    )
    benchmark: bool = Field(
        False,
        description=(
            "A benchmark or metric that results sections score; paper pages link their results to it."
        ),
    )


def parse_glossary(text: str, paper_ids: set[str], rel: str = GLOSSARY) -> list[GlossaryEntry]:
    """Validate the glossary's YAML ``text``; raise :class:`ValidationFailed` with every problem.

    >>> entry = '- {en: x, zh-Hant: 叉, definition: {en: d, zh-Hant: 定}, paper: %s}\\n'
    >>> [e.zh_hant for e in parse_glossary(entry % "null", {"bert"})]
    ['叉']
    >>> parse_glossary(entry % "bret", {"bert"})
    Traceback (most recent call last):
    ...
    kb.errors.ValidationFailed: Aborted: 1 error in 1 record.
    """

    def at(loc: tuple, message: str) -> Problem:
        line, col = yamlio.locate(text, loc)
        return Problem(rel, line, col, dotted(loc), message)

    try:
        data = yamlio.load(text)
    except yamlio.YamlProblem as e:
        raise ValidationFailed([Problem(rel, e.line, e.col, e.field, e.message)]) from None
    if not isinstance(data, list):
        raise ValidationFailed([at((), "the glossary is a list of entries (- en: …)")])
    entries, problems, first = [], [], {}
    for i, item in enumerate(data):
        try:
            entry = GlossaryEntry.model_validate(item)
        except ValidationError as e:
            problems += [at((i, *x["loc"]), _message(x)) for x in e.errors(include_url=False)]
            continue
        key = entry.en.casefold()
        if key in first:
            line = yamlio.locate(text, (first[key], "en"))[0]
            problems.append(at((i, "en"), f"duplicate term {entry.en!r} (first on line {line})"))
        first.setdefault(key, i)
        if entry.paper and entry.paper not in paper_ids:
            problems.append(
                at(
                    (i, "paper"),
                    f"unknown paper {entry.paper!r}{did_you_mean(entry.paper, paper_ids)}",
                )
            )
        for j, v in enumerate(entry.variants):
            if v == entry.zh_hant:
                problems.append(at((i, "variants", j), f"variant {v!r} is the rendering itself"))
        for j, x in enumerate(entry.exceptions):
            if not any(v in x for v in entry.variants):
                problems.append(
                    at((i, "exceptions", j), f"exception {x!r} holds none of the variants")
                )
        entries.append(entry)
    if problems:
        raise ValidationFailed(problems)
    return entries


def load_glossary(root: str | Path) -> list[GlossaryEntry] | None:
    """The validated glossary of the project at ``root``, sorted by English term.

    Paper ids are checked against ``papers/``. ``None`` when the project has no glossary.
    """
    root = Path(root)
    if not (root / PATH).is_file():
        return None
    paper_ids = {p.stem for p in (root / "papers").glob("*.yaml")}
    entries = parse_glossary((root / PATH).read_text(encoding="utf-8"), paper_ids)
    return sorted(entries, key=lambda e: (e.en.casefold(), e.en))


def zh_texts(model: BaseModel, where: str = "") -> Iterator[tuple[str, str]]:
    """Every (field path, zh-Hant text) of a record, found by walking the model.

    Each :class:`~kb.knowledge.schema.Bilingual` gives its ``zh-Hant`` half (the path names
    the bilingual field: ``summary.overview``, ``runnable.gate_text``) and each passage its
    ``translation``, wherever they sit, so a field added to the schema is covered at once.

    >>> from kb.knowledge.schema import Paper
    >>> p = Paper(id="x", title="X", authors=["A"], year=2000,
    ...           summary={"overview": {"en": "-", "zh-Hant": "概述。"}},
    ...           passages=[{"quote": "Q.", "section": "§1", "translation": "譯文。"}])
    >>> list(zh_texts(p))
    [('summary.overview', '概述。'), ('passages[0].translation', '譯文。')]
    """
    if isinstance(model, Bilingual):
        yield where, model.zh_hant
        return
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name
        path = f"{where}.{key}" if where else key
        if key in ZH_KEYS and isinstance(value, str):
            yield path, value
        elif isinstance(value, BaseModel):
            yield from zh_texts(value, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from zh_texts(item, f"{path}[{i}]")


def _uses(
    texts: list[tuple[str, str]], entries: list[GlossaryEntry]
) -> list[tuple[str, str, GlossaryEntry]]:
    """(where, variant, entry) for every listed variant in ``texts``.

    Longer variants are matched first; an occurrence inside a correct rendering (算法 inside
    演算法) or inside a listed exception (文本 inside 論文本身) does not count.
    """
    pairs = sorted(((v, e) for e in entries for v in e.variants), key=lambda ve: -len(ve[0]))
    exceptions = [x for e in entries for x in e.exceptions]
    # the correct words a variant hides inside: its own entry's rendering (演算法 for 算法) and
    # the listed exceptions; another entry's rendering is no excuse (the glossary must agree)
    inside = {
        v: sorted({w for w in [e.zh_hant, *exceptions] if v in w and v != w}, key=len, reverse=True)
        for v, e in pairs
    }
    found = []
    for where, text in texts:
        for variant, entry in pairs:
            masked = text
            for w in inside[variant]:
                masked = masked.replace(w, "\0" * len(w))
            if variant in masked:
                found.append((where, variant, entry))
                text = text.replace(variant, "\0" * len(variant))
    return found


def inconsistencies(base, entries: list[GlossaryEntry]) -> list[str]:
    """Uses of a listed wrong variant in the zh-Hant text of ``base``'s records.

    ``base`` is a :class:`~kb.knowledge.base.KnowledgeBase` (anything with ``.papers``). Longer
    variants are matched first, and an occurrence inside a correct rendering (算法 inside
    演算法) does not count.

    >>> from types import SimpleNamespace
    >>> from kb.knowledge.schema import Paper
    >>> algo = GlossaryEntry.model_validate({"en": "algorithm", "zh-Hant": "演算法",
    ...     "definition": {"en": "a procedure", "zh-Hant": "步驟"}, "variants": ["算法"]})
    >>> p = Paper(id="x", title="X", authors=["A"], year=2000,
    ...           summary={"overview": {"en": "-", "zh-Hant": "此演算法優於舊算法。"}})
    >>> inconsistencies(SimpleNamespace(papers={"x": p}), [algo])
    ["papers/x.yaml › summary.overview: uses '算法' for 'algorithm'; the glossary says '演算法'"]
    """
    texts = [
        (f"papers/{pid}.yaml › {where}", text)
        for pid, paper in sorted(base.papers.items())
        for where, text in zh_texts(paper)
    ]
    return [
        f"{where}: uses {variant!r} for {entry.en!r}; the glossary says {entry.zh_hant!r}"
        for where, variant, entry in _uses(texts, entries)
    ]


def self_inconsistencies(entries: list[GlossaryEntry]) -> list[str]:
    """Uses of a listed wrong variant in the glossary's own renderings and definitions.

    >>> up = GlossaryEntry.model_validate({"en": "upsampling", "zh-Hant": "上取樣",
    ...     "definition": {"en": "enlarge", "zh-Hant": "放大"}, "variants": ["上採樣"]})
    >>> learned = GlossaryEntry.model_validate({"en": "learned upsampling", "zh-Hant": "可學習的上採樣",
    ...     "definition": {"en": "trained", "zh-Hant": "權重可訓練的上取樣"}})
    >>> self_inconsistencies([up, learned])
    ["kb/data/glossary.yaml › learned upsampling: uses '上採樣' for 'upsampling'; the glossary says '上取樣'"]
    """
    texts = [(f"{GLOSSARY} › {e.en}", f"{e.zh_hant}\n{e.definition.zh_hant}") for e in entries]
    return [
        f"{where}: uses {variant!r} for {entry.en!r}; the glossary says {entry.zh_hant!r}"
        for where, variant, entry in _uses(texts, entries)
    ]
