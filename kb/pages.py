"""Which pages the site has, and the data each template gets.

Each entry is ``(path under site_src/, template name, context)``; sorted, so the
site is the same for the same records.
"""
from __future__ import annotations

import json
from typing import Iterator

from . import lineage as lin
from .bib import export
from .knowledge import KnowledgeBase
from .schema import SUMMARY_SECTIONS

SECTION_TITLES = {
    "overview": ("Overview", "概要"), "problem": ("Problem", "問題"), "method": ("Method", "方法"),
    "results": ("Results", "結果"), "discussion": ("Discussion", "討論"),
    "conclusion": ("Conclusion", "結論"), "future_work": ("Future work", "未來工作"),
}


def apa(p) -> str:
    """An APA-style reference string: ``Last, F., & Last, F. (Year). Title. Venue.``"""
    def short(name: str) -> str:
        parts = name.split()
        return f"{parts[-1]}, " + " ".join(f"{w[0]}." for w in parts[:-1]) if len(parts) > 1 else name

    names = [short(a) for a in p.authors]
    if not p.authors_complete:
        names.append("et al.")
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + ", & " + names[-1]
    venue = f" {p.venue}." if p.venue else ""
    link = f" https://doi.org/{p.doi}" if p.doi else (f" https://arxiv.org/abs/{p.arxiv}" if p.arxiv else "")
    return f"{who} ({p.year}). {p.title}.{venue}{link}"


def results_of(base: KnowledgeBase, paper_id: str) -> list[dict]:
    path = base.root / "results" / f"{paper_id}.json"
    if not path.is_file():
        return []
    runs = json.loads(path.read_text(encoding="utf-8")).get("runs", {})
    return [runs[k] for k in sorted(runs)]


def neighbours(base: KnowledgeBase, node: str) -> tuple[list[dict], list[dict]]:
    """Typed edges into and out of a node (a paper's include its concepts' edges)."""
    G = base.graph
    own = {node, *lin.concepts_of(G, node)}
    up = [{"from": u, "to": v, **d} for u, v, d in sorted(G.in_edges(own, data=True))
          if d["type"] != "part-of" or u not in own]
    down = [{"from": u, "to": v, **d} for u, v, d in sorted(G.out_edges(own, data=True))
            if d["type"] != "part-of" and v not in own]
    return [e for e in up if e["type"] != "part-of"], down


def context_for_pages(base: KnowledgeBase) -> Iterator[tuple[str, str, dict]]:
    G = base.graph
    papers = base.papers
    course = base.course()
    yield "index.md", "index.md.j2", {"course": course, "count": len(papers),
                                       "concepts": sum(len(p.concepts) for p in papers.values())}
    yield "course.md", "course.md.j2", {"course": course, "plans": {p.id: lin.plan(G, p.id)[:-1] for p in course},
                                        "papers": papers}
    by_year: dict[int, list] = {}
    for p in sorted(papers.values(), key=lambda p: (p.year, p.id)):
        by_year.setdefault(p.year, []).append(p)
    yield "timeline.md", "timeline.md.j2", {"by_year": by_year}
    yield "papers/index.md", "papers_index.md.j2", {"papers": sorted(papers.values(), key=lambda p: (p.track or "", p.year, p.id))}
    yield "bibliography.md", "bibliography.md.j2", {"papers": sorted(papers.values(), key=lambda p: (p.authors[0].split()[-1], p.year)),
                                                    "apa": apa}
    yield "papers.bib", None, {"text": export(list(papers.values()))}
    for pid in sorted(papers):
        p = papers[pid]
        up, down = neighbours(base, pid)
        yield f"papers/{pid}.md", "paper.md.j2", {
            "p": p, "up": up, "down": down, "plan": lin.plan(G, pid)[:-1], "sections": SECTION_TITLES,
            "bibtex": export([p]).strip(), "apa": apa(p), "results": results_of(base, pid),
            "code": (base.root / "runnable" / f"{p.runnable.id}.py").read_text(encoding="utf-8") if p.runnable else None,
            "papers": papers, "G": G}
        for c in p.concepts:
            node = f"{pid}/{c.id}"
            cup, cdown = neighbours(base, node)
            yield f"concepts/{node}.md", "concept.md.j2", {"p": p, "c": c, "node": node, "up": cup, "down": cdown, "G": G}


