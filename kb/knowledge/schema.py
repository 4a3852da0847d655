"""The record model: the one place a field of ``papers/<id>.yaml`` is defined.

Everything else (the loader, the JSON Schema in ``kb/paper.schema.json``, the site
templates, ``kb new``) reads these classes. Field descriptions end up in the JSON
Schema, so an editor with the yaml-language-server shows them while typing.

Lineage direction, stated once: an edge ``from → to`` means *to builds on from*
(``word2vec/cbow → bert/mlm``). A record lists the edges that arrive at itself or
at one of its own concepts.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_RE = r"^[a-z0-9][a-z0-9-]*$"
NODE_RE = r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)?$"
CURRICULUM_RE = r"^[0-9]{2}[a-z]$"
SYMBOL_RE = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"  # a function, class or Class.method
)
SVG_RE = r"^[a-z0-9][a-z0-9-]*\.svg$"

#: Edge types, with what ``from → to`` means for each. Kept small on purpose.
EDGE_TYPES: dict[str, str] = {
    "extends": "to keeps from's idea and adds to it",
    "generalizes": "to contains from as a special case",
    "inspired-by": "to borrows from's idea in a new setting",
    "replaces": "to is put in place of from for the same job",
    "uses": "to uses from as a component, tool or metric",
    "compares-with": "to measures itself against from",
    "analyzes": "to studies what from learns or why it works",
    "scales": "to is from made much larger",
    "part-of": "from is a concept inside the paper to (added by the loader)",
}
EdgeType = Literal[
    "extends",
    "generalizes",
    "inspired-by",
    "replaces",
    "uses",
    "compares-with",
    "analyzes",
    "scales",
]
TRACKS = ("cv", "nlp", "foundations", "generative", "rl")
SUMMARY_SECTIONS = ("problem", "method", "results", "discussion", "conclusion", "future_work")
READING_KINDS = (
    "paper",
    "code",
    "translation",
    "intro",
    "illustrated",
    "appendix",
    "lab",
    "blog",
    "video",
    "slides",
)

Slug = Annotated[str, Field(pattern=ID_RE, max_length=80)]
NodeId = Annotated[
    str, Field(pattern=NODE_RE, max_length=161, description="A paper id, or paper/concept.")
]
Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Url = Annotated[
    str,
    Field(
        pattern=r"""^https?://[^\s<>"']+$""",
        max_length=2000,
        description="http(s) only: other schemes are refused.",
    ),
]


class Strict(BaseModel):
    # Unknown keys are reported by pydantic; the loader turns them into warnings
    # (errors under --strict) and validates the rest.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


_CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")


def join_cjk(text: str) -> str:
    """Drop the spaces YAML's folded lines leave between Chinese characters.

    >>> join_cjk("每次預測都 使用整個句子,用 BERT 模型")
    '每次預測都使用整個句子,用 BERT 模型'
    """
    return _CJK_GAP.sub("", text)


class Bilingual(Strict):
    """The same text in English and Traditional Chinese (Taiwan usage)."""

    en: Text
    zh_hant: Text = Field(alias="zh-Hant")

    @field_validator("zh_hant")
    @classmethod
    def _join(cls, v: str) -> str:
        return join_cjk(v)


class Summary(Strict):
    """Notes in the course's template. ``overview`` is 3–6 sentences; course papers
    (those with ``curriculum``) must fill every section."""

    overview: Bilingual
    problem: Bilingual | None = Field(
        None, description="Which weakness of earlier work the paper addresses."
    )
    method: Bilingual | None = Field(
        None, description="The idea, then what one needs to implement it (LaTeX allowed)."
    )
    results: Bilingual | None = Field(
        None, description="Key numbers, each with its table or section."
    )
    discussion: Bilingual | None = Field(
        None, description="Compared with neighbouring papers in the KB."
    )
    conclusion: Bilingual | None = None
    future_work: Bilingual | None = Field(None, description="What followed, pointing to KB papers.")


class Citation(Strict):
    """A citation count is only meaningful with its source and the date it was read."""

    count: int = Field(ge=0)
    source: Text
    as_of: str = Field(
        pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$", description="YYYY, YYYY-MM or YYYY-MM-DD."
    )


class Passage(Strict):
    """A short quote from the paper (a sentence or two), where it is, and our translation."""

    quote: str = Field(min_length=1, max_length=500)
    section: Text
    translation: Text = Field(description="zh-Hant translation of the quote, written by us.")

    @field_validator("translation")
    @classmethod
    def _join(cls, v: str) -> str:
        return join_cjk(v)


class Reading(Strict):
    kind: Literal[READING_KINDS]  # type: ignore[valid-type]
    title: Text
    url: Url
    language: Literal["en", "zh-Hant", "zh-Hans", "ja", "ko"] = "en"


class Concept(Strict):
    """An idea inside a paper; its node id is ``<paper>/<id>``."""

    id: Slug
    name: Bilingual
    description: Bilingual | None = None
    code: str | None = Field(
        None,
        pattern=SYMBOL_RE,
        max_length=120,
        description="The function or class of the paper's runnable that "
        "implements this concept (shown on lineage edges).",
    )


class Figure(Strict):
    """A number the paper states, with where it states it (runnables test against these)."""

    id: Slug
    value: float
    unit: Text
    text: str | None = Field(None, description="The figure as the paper words it.")
    source: Text = Field(description="Table, section or page.")


class Edge(Strict):
    """``from → to``: to builds on from. ``to`` is this paper or one of its concepts."""

    from_: NodeId = Field(alias="from")
    to: NodeId
    type: EdgeType
    why: Bilingual
    evidence: Text = Field(
        description="Section or passage; for an interpretation, the course's argument."
    )
    basis: Literal["stated", "interpretation"] = Field(
        description="stated: the authors say so; interpretation: the course draws the link."
    )


class Gate(Strict):
    metric: Slug
    op: Literal[">=", "<="]
    value: float


class Runnable(Strict):
    """The paper's runnable, ``runnable/<id>.py``."""

    id: Slug
    gate: Gate = Field(description="What the tiny preset must reach on held-out data.")
    gate_text: Bilingual | None = None
    params_figure: Slug | None = Field(
        None, description="Figure id the paper preset's parameter count must match (±2 %)."
    )


class Illustration(Strict):
    """A figure we draw ourselves: ``papers/figures/<file>``, an SVG with labels in both
    languages that uses ``currentColor`` so it reads in light and dark themes."""

    file: str = Field(pattern=SVG_RE, description="File name under papers/figures/.")
    alt: Bilingual = Field(description="What the figure shows, for a reader who cannot see it.")
    caption: Bilingual


class CodeRef(Strict):
    """A key equation and the lines of the runnable that implement it, shown side by side.

    The lines are read from ``runnable/<runnable>.py`` at build time, so the page follows the
    file; a symbol that no longer exists stops the build."""

    equation: Text = Field(description="The equation in LaTeX, without $$ (shown as display math).")
    symbol: str = Field(
        pattern=SYMBOL_RE,
        max_length=120,
        description="A function, class or Class.method of the runnable.",
    )
    explain: Bilingual = Field(description="How the lines map onto the equation's symbols.")
    runnable: Slug | None = Field(
        None, description="Another paper's runnable; default: this paper's."
    )


class Teaching(Strict):
    """What a course paper's page needs to teach the idea the first time it is met."""

    intuition: Bilingual = Field(
        description="The idea before the details, as a lecturer explains it."
    )
    worked_example: Bilingual = Field(
        description="Small real numbers and tensor shapes traced through "
        "the method; a test recomputes them."
    )
    confusions: list[Bilingual] = Field(
        min_length=2, max_length=4, description="Common confusions, each with its correction."
    )
    illustrations: list[Illustration] = Field(min_length=1)
    code: list[CodeRef] = Field(min_length=1)


class Bibtex(Strict):
    """Entry type, key and the fields the record does not already hold."""

    type: str = Field(pattern=r"^[a-z]+$")
    key: str = Field(
        pattern=r"""^[^\s,{}"#%'()=\\]+$""",
        max_length=200,
        description="The citation key: no spaces, commas, braces, quotes, #, %, parentheses, = or backslash.",
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Fields beyond title, author, year, doi, url, eprint (journal, pages, …).",
    )

    @field_validator("fields")
    @classmethod
    def _facts_live_in_the_record(cls, v: dict[str, str]) -> dict[str, str]:
        owned = {
            "title": "title",
            "author": "authors",
            "year": "year",
            "doi": "doi",
            "url": "url",
            "eprint": "arxiv",
            "archiveprefix": "arxiv",
            "venue": "venue",
            "kbid": "id",
        }
        for key in v:
            if key.lower() in owned:
                raise ValueError(
                    f"{key!r} comes from the record's own {owned[key.lower()]!r}; "
                    "remove it from bibtex.fields"
                )
        return v


class Paper(Strict):
    """One paper: facts, notes, concepts and where its ideas came from."""

    id: Slug = Field(description="Equal to the file name without .yaml.")
    title: Text
    authors: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1)
    authors_complete: bool = Field(True, description="false when the list ends in 'et al.'.")
    year: int = Field(ge=1800, le=2100)
    venue: str | None = None
    arxiv: str | None = Field(None, pattern=r"^(\d{4}\.\d{4,5}|[a-z-]+/\d{7})$")
    doi: str | None = Field(None, pattern=r"^10\.\d{4,9}/\S+$")
    url: Url | None = None
    unconfirmed: list[str] = Field(
        default_factory=list,
        description="Facts we could not confirm against the paper, by field name.",
    )
    bibtex: Bibtex | None = None
    citations: list[Citation] = Field(default_factory=list)
    track: Literal[TRACKS] | None = None  # type: ignore[valid-type]
    tags: list[Slug] = Field(default_factory=list)
    curriculum: str | None = Field(
        None, pattern=CURRICULUM_RE, description="Study-order code, e.g. 10b."
    )
    summary: Summary | None = None
    teaching: Teaching | None = Field(
        None,
        description="Intuition, worked example, confusions, figures and code beside the equations.",
    )
    passages: list[Passage] = Field(default_factory=list)
    reading: list[Reading] = Field(default_factory=list)
    concepts: list[Concept] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)
    runnable: Runnable | None = None
    lineage: list[Edge] = Field(default_factory=list)

    @field_validator("authors")
    @classmethod
    def _no_et_al(cls, v: list[str]) -> list[str]:
        if any(re.fullmatch(r"(et al\.?|others)", a.strip(), re.I) for a in v):
            raise ValueError(
                "write the known authors and set authors_complete: false instead of 'et al.'"
            )
        return v


def json_schema() -> dict:
    """The JSON Schema of a record, as written to ``kb/paper.schema.json``."""
    schema = Paper.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "paper.schema.json"
    return schema


def known_keys(model: type[BaseModel] = Paper, seen: set | None = None) -> set[str]:
    """Every key any record model accepts (for "did you mean" on unknown keys)."""
    import typing

    seen = set() if seen is None else seen
    keys: set[str] = set()
    if model in seen:
        return keys
    seen.add(model)
    for name, f in model.model_fields.items():
        keys.add(f.alias or name)
        for arg in typing.get_args(f.annotation) + (f.annotation,):
            for inner in (*typing.get_args(arg), arg):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    keys |= known_keys(inner, seen)
    return keys
