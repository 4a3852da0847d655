"""What a course page teaches beyond the notes: the intuition, a worked example, common
confusions, our own figures, the code beside the key equations, and the runnable's measured
idea-vs-ablation curve. Each function gives a template its data; errors name the record field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from ..knowledge.base import KnowledgeBase
from .code import excerpt, inline_svg

#: Where the code pages live: ``code/<runnable>.md`` shows the whole file with line anchors.
CODE_PAGE = "code/{}.md"


def line_href(runnable: str, line: int, from_page: str) -> str:
    """Link from a page to one line of a runnable's code page (pymdownx.highlight's anchors).

    For raw HTML (``.html``): mkdocs' link check does not see anchors inside highlighted code."""
    page = CODE_PAGE.format(runnable)[: -len(".md")] + ".html"
    return "../" * from_page.count("/") + page + f"#__codelineno-0-{line}"


def teaching_context(base: KnowledgeBase, paper_id: str, page: str) -> dict | None:
    """The record's ``teaching`` block with its figures inlined and code excerpts read."""
    p = base.papers[paper_id]
    t = p.teaching
    if t is None:
        return None
    where = f"papers/{paper_id}.yaml › teaching"
    figures = [
        {
            "svg": inline_svg(
                base.root / "papers" / "figures" / f.file,
                f.alt.en,
                f.alt.zh_hant,
                f"{where}.illustrations[{i}].file",
            ),
            "caption": f.caption,
            "number": i + 1,
        }
        for i, f in enumerate(t.illustrations)
    ]
    code = []
    for i, c in enumerate(t.code):
        rid = c.runnable or (p.runnable.id if p.runnable else paper_id)
        e = excerpt(base.root, rid, c.symbol, f"{where}.code[{i}].symbol")
        code.append(
            {
                "equation": c.equation,
                "explain": c.explain,
                "excerpt": e,
                "href": line_href(rid, e.start, page),
            }
        )
    return {
        "intuition": t.intuition,
        "worked_example": t.worked_example,
        "confusions": t.confusions,
        "figures": figures,
        "code": code,
    }


def curve(results: list[dict]) -> str | None:
    """The idea-vs-ablation history of the plain tiny preset's run (never one with overrides),
    as JSON for the page's chart."""
    for r in results:
        h = r.get("history") or {}
        if (
            r.get("preset") == "tiny"
            and not r.get("overrides")
            and h.get("idea")
            and h.get("ablation")
        ):
            ablation = (r.get("ablation") or {}).get("name", "ablation")
            return json.dumps(
                {
                    "x": h.get("x", "step"),
                    "idea": h["idea"],
                    "ablation": h["ablation"],
                    "metric": r.get("metric"),
                    "ablation_name": ablation,
                    "gate": r.get("gate"),
                    "device": r.get("device_name") or r.get("device"),
                    "commit": r.get("commit"),
                    "date": r.get("date"),
                },
                ensure_ascii=False,
                sort_keys=True,
            )
    return None


def concept_code_pairs(base: KnowledgeBase, node: str, edges: list[dict], page: str) -> list[dict]:
    """For each lineage edge between two concepts that both name their code, both excerpts."""

    def concept_code(n: str):
        if "/" not in n:
            return None
        pid, cid = n.split("/", 1)
        paper = base.papers.get(pid)
        c = next((c for c in paper.concepts if c.id == cid), None) if paper else None
        if not c or not c.code or not paper.runnable:
            return None
        return excerpt(
            base.root, paper.runnable.id, c.code, f"papers/{pid}.yaml › concepts[{cid}].code"
        )

    pairs = []
    for e in edges:
        left, right = concept_code(e["from"]), concept_code(e["to"])
        if left and right:
            pairs.append(
                {
                    "from": e["from"],
                    "to": e["to"],
                    "type": e["type"],
                    "left": left,
                    "right": right,
                    "left_href": line_href(left.runnable, left.start, page),
                    "right_href": line_href(right.runnable, right.start, page),
                }
            )
    return pairs


def code_pages(base: KnowledgeBase, ids: list[str]) -> Iterator[tuple[str, str, dict]]:
    """A page per runnable with the whole file and a link to every line."""
    for pid in ids:
        p = base.papers[pid]
        if p.runnable:
            path = base.root / "runnable" / f"{p.runnable.id}.py"
            yield (
                CODE_PAGE.format(p.runnable.id),
                "code.md.j2",
                {"p": p, "source": path.read_text(encoding="utf-8")},
            )


def bench_anchor(term: str) -> str:
    """The glossary page's anchor of a benchmark entry: ``bench-mean-average-precision``."""
    return "bench-" + re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


def benchmarks_in(text: str | None, glossary) -> list[dict]:
    """The glossary's benchmarks and metrics a results text names, in glossary order: a term
    or alias as a whole word (case matters for names with capitals: BLEU, GLUE, mAP).

    >>> from types import SimpleNamespace as E
    >>> g = [E(en="BLEU", zh_hant="BLEU 分數", aliases_en=[], benchmark=True),
    ...      E(en="perplexity", zh_hant="困惑度", aliases_en=[], benchmark=True),
    ...      E(en="accuracy", zh_hant="準確率", aliases_en=[], benchmark=False)]
    >>> [b["en"] for b in benchmarks_in("28.4 BLEU; Perplexity fell; accuracy rose", g)]
    ['BLEU', 'perplexity']
    """
    found = []
    for t in glossary or []:
        if not getattr(t, "benchmark", False) or not text:
            continue
        for name in (t.en, *t.aliases_en):
            flags = 0 if name != name.lower() else re.I
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, flags):
                found.append({"en": t.en, "zh": t.zh_hant, "anchor": bench_anchor(t.en)})
                break
    return found
