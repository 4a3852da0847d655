"""The glossary, ``kb/data/glossary.yaml``: one zh-Hant rendering per technical term.

Each entry has the term, its Taiwan-usage rendering, a one-line definition in both
languages, the paper that introduced it and the renderings our notes must not use
(``variants``: Simplified characters, mainland terms, mistranslations). The file is
optional: :func:`load_glossary` returns ``None`` without it and the site has no glossary
page. :func:`inconsistencies` finds the variants in the records' zh-Hant text.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from pydantic import Field, ValidationError

from . import yamlio
from ..errors import Problem, ValidationFailed, did_you_mean
from .loader import _message, dotted
from .schema import Bilingual, Paper, Slug, Strict, Text

PATH = Path("kb") / "data" / "glossary.yaml"
GLOSSARY = PATH.as_posix()


class GlossaryEntry(Strict):
    """One term: its rendering, definition, origin and the renderings to avoid."""

    en: Text
    zh_hant: Text = Field(alias="zh-Hant")
    definition: Bilingual
    paper: Slug | None = Field(None, description="The KB paper that introduced it, if any.")
    variants: list[Text] = Field(default_factory=list, description="zh-Hant renderings our notes must not use.")
    aliases_en: list[Text] = Field(default_factory=list)


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
            problems.append(at((i, "paper"), f"unknown paper {entry.paper!r}{did_you_mean(entry.paper, paper_ids)}"))
        for j, v in enumerate(entry.variants):
            if v == entry.zh_hant:
                problems.append(at((i, "variants", j), f"variant {v!r} is the rendering itself"))
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


def zh_texts(paper: Paper) -> Iterator[tuple[str, str]]:
    """Every (field path, zh-Hant text) of a record: summary, lineage, concepts, passages."""
    if paper.summary:
        for name, section in paper.summary:
            if section:
                yield f"summary.{name}", section.zh_hant
    for i, edge in enumerate(paper.lineage):
        yield f"lineage[{i}].why", edge.why.zh_hant
    for i, c in enumerate(paper.concepts):
        yield f"concepts[{i}].name", c.name.zh_hant
        if c.description:
            yield f"concepts[{i}].description", c.description.zh_hant
    for i, q in enumerate(paper.passages):
        yield f"passages[{i}].translation", q.translation


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
    pairs = sorted(((v, e) for e in entries for v in e.variants), key=lambda ve: -len(ve[0]))
    # the correct renderings a variant hides inside, e.g. 演算法 for 算法
    inside = {v: [e.zh_hant for e in entries if v in e.zh_hant and v != e.zh_hant] for v, _ in pairs}
    found = []
    for pid, paper in sorted(base.papers.items()):
        for where, text in zh_texts(paper):
            for variant, entry in pairs:
                masked = text
                for r in inside[variant]:
                    masked = masked.replace(r, "\0" * len(r))
                if variant in masked:
                    found.append(f"papers/{pid}.yaml › {where}: uses {variant!r} for {entry.en!r}; "
                                 f"the glossary says {entry.zh_hant!r}")
                    text = text.replace(variant, "\0" * len(variant))
    return found
