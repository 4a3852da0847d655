"""Which pages the site has, and the data each template gets.

Each entry is ``(path under site_src/, template name, context)``; sorted, so the
site is the same for the same records. A template name of ``None`` ships
``context["text"]`` as is (the .bib, the explorer's JSON, our own assets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..bib import export
from ..knowledge import lineage as lin
from ..knowledge.base import KnowledgeBase
from ..knowledge.glossary import load_glossary
from ..knowledge.schema import EDGE_TYPES
from .diagram import EDGE_STYLE, local_svg
from .explorer import graph_json
from .teaching import (
    bench_anchor,
    benchmarks_in,
    code_pages,
    concept_code_pairs,
    curve,
    teaching_context,
)

SECTION_TITLES = {
    "overview": ("Overview", "概要"),
    "problem": ("Problem", "問題"),
    "method": ("Method", "方法"),
    "results": ("Results", "結果"),
    "discussion": ("Discussion", "討論"),
    "conclusion": ("Conclusion", "結論"),
    "future_work": ("Future work", "未來工作"),
}


def apa(p) -> str:
    """An APA-style reference string: ``Last, F., & Last, F. (Year). Title. Venue.``"""

    def short(name: str) -> str:
        parts = name.split()
        return (
            f"{parts[-1]}, " + " ".join(f"{w[0]}." for w in parts[:-1]) if len(parts) > 1 else name
        )

    names = [short(a) for a in p.authors]
    if not p.authors_complete:
        names.append("et al.")
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + ", & " + names[-1]
    venue = f" {p.venue}." if p.venue else ""
    link = (
        f" https://doi.org/{p.doi}"
        if p.doi
        else (f" https://arxiv.org/abs/{p.arxiv}" if p.arxiv else "")
    )
    return f"{who} ({p.year}). {p.title}.{venue}{link}"


def results_of(base: KnowledgeBase, paper_id: str) -> list[dict]:
    """A paper's recorded runs, each with its ``key`` (``tiny@cpu``): the plain presets' runs
    first, then those with overrides (``tiny+lr=0.01@cpu``, with their ``overrides``)."""
    path = base.root / "results" / f"{paper_id}.json"
    if not path.is_file():
        return []
    runs = json.loads(path.read_text(encoding="utf-8")).get("runs", {})
    order = sorted(runs, key=lambda k: (bool(runs[k].get("overrides")), k))
    return [dict(runs[k], key=k) for k in order]


#: How an edge's ``basis`` is said on a page.
BASIS = {"stated": ("stated", "論文明言"), "interpretation": ("interpretation", "課程詮釋")}


def edge_words(page: str, own: str):
    """``say(edge, lang, reading)`` for one page: the edge as a sentence in Markdown, the
    page's own node in bold and every other node a link to its page."""
    from .markdown import node_url

    def name(n: str) -> str:
        return f"**{n}**" if n == own else f"[{n}]({node_url(n, page)})"

    def say(edge: dict, lang: str, reading: str = "builder") -> str:
        return lin.edge_sentence(edge, lang, reading, name=name)

    return say


def neighbours(base: KnowledgeBase, node: str) -> tuple[list[dict], list[dict]]:
    """Typed edges into and out of a node (a paper's include its concepts' edges)."""
    G = base.graph
    own = {node, *lin.concepts_of(G, node)}
    up = [
        {"from": u, "to": v, **d}
        for u, v, d in sorted(G.in_edges(own, data=True))
        if d["type"] != "part-of" or u not in own
    ]
    down = [
        {"from": u, "to": v, **d}
        for u, v, d in sorted(G.out_edges(own, data=True))
        if d["type"] != "part-of" and v not in own
    ]
    return [e for e in up if e["type"] != "part-of"], down


#: A paper page's "Read before this" lists the papers at most this many lineage steps up, in
#: reading order; ``kb plan`` and the course page give the whole order. Every ancestor grows with
#: the KB (xlnet already has 31 of 61; a synthetic 10k KB averages 71), two steps stay ~7.
PLAN_STEPS = 2

TRACK_TITLES = {
    "cv": ("Computer vision", "電腦視覺"),
    "nlp": ("Language", "自然語言處理"),
    "foundations": ("Foundations", "基礎"),
    "generative": ("Generative models", "生成模型"),
    "rl": ("Reinforcement learning", "強化學習"),
    "other": ("Other", "其他"),
}


def assets(base: KnowledgeBase) -> Iterator[tuple[str, None, dict]]:
    """Our own scripts and styles, ``site_src/templates/assets/**`` → ``assets/**``."""
    folder = base.root / "site_src" / "templates" / "assets"
    for f in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if f.is_file():
            yield f"assets/{f.relative_to(folder).as_posix()}", None, {"text": f.read_bytes()}


def html_href(node: str, from_page: str) -> str:
    """Like :func:`kb.site.markdown.node_url`, for raw HTML (which mkdocs leaves alone): ``.html`` targets."""
    from .markdown import node_url

    return node_url(node, from_page)[: -len(".md")] + ".html"


def context_for_pages(
    base: KnowledgeBase, only: set[str] | None = None
) -> Iterator[tuple[str, str | None, dict]]:
    """Every page; with ``only``, just the pages of those records (``kb serve``'s first pass)."""
    if only is not None:
        ids = sorted(only & base.records.keys())
        yield from record_pages(base, ids, runnable_results(base, ids))
        yield from code_pages(base, ids)
        return
    G = base.graph
    papers = base.papers
    course = base.course()
    glossary = load_glossary(base.root)
    results = runnable_results(base, sorted(papers))
    by_track = sorted(papers.values(), key=lambda p: (p.track or "other", p.year, p.id))
    yield from assets(base)
    yield (
        "index.md",
        "index.md.j2",
        {
            "course": course,
            "count": len(papers),
            "glossary": glossary is not None,
            "concepts": sum(len(p.concepts) for p in papers.values()),
        },
    )
    yield (
        "course.md",
        "course.md.j2",
        {
            "course": course,
            "plans": {p.id: lin.plan(G, p.id)[:-1] for p in course},
            "papers": papers,
        },
    )
    by_year: dict[int, list] = {}
    for p in sorted(papers.values(), key=lambda p: (p.year, p.id)):
        by_year.setdefault(p.year, []).append(p)
    yield "timeline.md", "timeline.md.j2", {"by_year": by_year}
    yield "papers/index.md", "papers_index.md.j2", {"papers": by_track}
    yield (
        "concepts/index.md",
        "concepts_index.md.j2",
        {"papers": [p for p in by_track if p.concepts]},
    )
    tags: dict[str, list] = {}
    for p in by_track:
        for t in p.tags:
            tags.setdefault(t, []).append(p)
    yield (
        "tags.md",
        "tags.md.j2",
        {"tracks": TRACK_TITLES, "papers": by_track, "tags": dict(sorted(tags.items()))},
    )
    if glossary is not None:
        yield (
            "glossary.md",
            "glossary.md.j2",
            {"terms": glossary, "papers": papers, "anchor": bench_anchor},
        )
    yield (
        "runnables.md",
        "runnables.md.j2",
        {"papers": [papers[i] for i in results], "results": results},
    )
    listed = [
        dict(
            p=p,
            id=p.id,
            title=p.title,
            year=p.year,
            concepts=p.concepts,
            track_key=p.track or "other",
        )
        for p in by_track
    ]
    yield (
        "lineage.md",
        "lineage.md.j2",
        {
            "tracks": TRACK_TITLES,
            "types": EDGE_TYPES,
            "styles": EDGE_STYLE,
            "papers": listed,
            "read": {
                t: {lang: lin.edge_sentence(("A", "B", t), lang) for lang in lin.LANGS}
                for t in EDGE_TYPES
                if t != "part-of"
            },
        },
    )
    yield "assets/lineage.json", None, {"text": graph_json(G, lambda n: html_href(n, "lineage.md"))}
    yield (
        "bibliography.md",
        "bibliography.md.j2",
        {
            "papers": sorted(papers.values(), key=lambda p: (p.authors[0].split()[-1], p.year)),
            "apa": apa,
        },
    )
    yield "papers.bib", None, {"text": export(list(papers.values()))}
    yield from record_pages(base, sorted(papers), results)
    yield from code_pages(base, sorted(papers))


def runnable_results(base: KnowledgeBase, ids: list[str]) -> dict[str, list[dict]]:
    """The recorded results of those of ``ids`` that have a runnable."""
    return {pid: results_of(base, pid) for pid in ids if base.records[pid].paper.runnable}


def record_pages(
    base: KnowledgeBase, ids: list[str], results: dict[str, list[dict]]
) -> Iterator[tuple[str, str, dict]]:
    """A paper's page and its concepts' pages, for each of ``ids``."""
    G = base.graph
    papers = base.papers
    glossary = load_glossary(base.root)
    for pid in ids:
        p = papers[pid]
        rel = f"papers/{pid}.md"
        results_text = p.summary.results.en if p.summary and p.summary.results else None
        up, down = neighbours(base, pid)
        order = lin.plan(G, pid)[:-1]
        near = lin.sources_within(G, pid, PLAN_STEPS)
        yield (
            rel,
            "paper.md.j2",
            {
                "p": p,
                "up": up,
                "down": down,
                "plan": [q for q in order if q in near],
                "plan_total": len(order),
                "plan_steps": PLAN_STEPS,
                "sections": SECTION_TITLES,
                "say": edge_words(rel, pid),
                "basis": BASIS,
                "bibtex": export([p]).strip(),
                "apa": apa(p),
                "results": results.get(pid, []),
                "code": (base.root / "runnable" / f"{p.runnable.id}.py").read_text(encoding="utf-8")
                if p.runnable
                else None,
                "papers": papers,
                "G": G,
                "diagram": local_svg(G, pid, up, down, lambda n, r=rel: html_href(n, r)),
                "teaching": teaching_context(base, pid, rel),
                "curve": curve(results.get(pid, [])),
                "benchmarks": benchmarks_in(results_text, glossary),
            },
        )
        for c in p.concepts:
            node = f"{pid}/{c.id}"
            crel = f"concepts/{node}.md"
            cup, cdown = neighbours(base, node)
            yield (
                crel,
                "concept.md.j2",
                {
                    "p": p,
                    "c": c,
                    "node": node,
                    "up": cup,
                    "down": cdown,
                    "G": G,
                    "say": edge_words(crel, node),
                    "basis": BASIS,
                    "code_pairs": concept_code_pairs(base, node, cup + cdown, crel),
                    "diagram": local_svg(G, node, cup, cdown, lambda n, r=crel: html_href(n, r)),
                },
            )
