"""Checks that need every record at once: ids, lineage nodes, ownership, cycles.

Each check yields :class:`~kb.errors.Problem` objects; :func:`check_all` runs them
in order. Graph checks run on the graph :mod:`kb.knowledge.lineage` builds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import networkx as nx

from ..errors import Problem, did_you_mean
from .loader import Record
from .schema import SUMMARY_SECTIONS

#: Ids that would collide with generated pages (papers/index.md).
RESERVED_IDS = {"index"}


def check_ids(records: list[Record]) -> Iterator[Problem]:
    seen: dict[str, Record] = {}
    for r in records:
        stem = Path(r.rel).stem
        if r.paper.id != stem:
            yield r.problem(
                ("id",),
                f"id {r.paper.id!r} differs from the file name; "
                f"rename the file to papers/{r.paper.id}.yaml or the id to {stem!r}",
            )
        if r.paper.id in RESERVED_IDS:
            yield r.problem(
                ("id",), f"id {r.paper.id!r} is reserved for a site page; choose another"
            )
        if r.paper.id in seen:
            yield r.problem(
                ("id",), f"duplicate id {r.paper.id!r} (also in {seen[r.paper.id].rel})"
            )
        seen.setdefault(r.paper.id, r)
        concept_ids = [c.id for c in r.paper.concepts]
        for i, c in enumerate(concept_ids):
            if c in concept_ids[:i]:
                yield r.problem(("concepts", i, "id"), f"duplicate concept id {c!r}")
        figure_ids = [f.id for f in r.paper.figures]
        for i, f in enumerate(figure_ids):
            if f in figure_ids[:i]:
                yield r.problem(("figures", i, "id"), f"duplicate figure id {f!r}")


def check_course_notes(records: list[Record]) -> Iterator[Problem]:
    for r in records:
        if not r.paper.curriculum:
            continue
        if r.paper.summary is None:
            yield r.problem(("curriculum",), "a course paper needs a summary in the note template")
            continue
        for s in SUMMARY_SECTIONS:
            if getattr(r.paper.summary, s) is None:
                yield r.problem(
                    ("summary", s),
                    f"required for a course paper (curriculum "
                    f"{r.paper.curriculum}): write it in en and zh-Hant",
                )


def check_nodes(
    records: list[Record], root: Path, broken: set[str] = frozenset()
) -> Iterator[Problem]:
    """Lineage ends, edge ownership and runnable files. Nodes of ``broken`` records (which
    failed to load and are reported already) are not reported again as unknown."""
    papers = {r.paper.id: r.paper for r in records}
    nodes = set(papers) | {f"{p.id}/{c.id}" for p in papers.values() for c in p.concepts}
    for r in records:
        p = r.paper
        for i, e in enumerate(p.lineage):
            for end, node in (("from", e.from_), ("to", e.to)):
                paper_id, _, concept = node.partition("/")
                if paper_id in broken and paper_id not in papers:
                    continue
                if paper_id not in papers:
                    yield r.problem(
                        ("lineage", i, end), f"unknown node {node!r}{did_you_mean(node, nodes)}"
                    )
                elif concept and node not in nodes:
                    declared = [c.id for c in papers[paper_id].concepts]
                    yield r.problem(
                        ("lineage", i, end),
                        f"paper {paper_id!r} declares no concept {concept!r}"
                        f"{did_you_mean(concept, declared)} (declared: {', '.join(declared) or 'none'})",
                    )
            if e.to.partition("/")[0] != p.id:
                yield r.problem(
                    ("lineage", i, "to"),
                    f"an edge belongs to the record it arrives at: move it to "
                    f"papers/{e.to.partition('/')[0]}.yaml, or make 'to' {p.id} or {p.id}/<concept>",
                )
            if e.from_ == e.to:
                yield r.problem(("lineage", i), "an edge from a node to itself")
        if p.runnable:
            if not (root / "runnable" / f"{p.runnable.id}.py").is_file():
                yield r.problem(
                    ("runnable", "id"),
                    f"no file runnable/{p.runnable.id}.py; "
                    "create it (kb new --runnable) or remove 'runnable'",
                )
            figs = [f.id for f in p.figures]
            if p.runnable.params_figure and p.runnable.params_figure not in figs:
                yield r.problem(
                    ("runnable", "params_figure"),
                    f"no figure {p.runnable.params_figure!r}{did_you_mean(p.runnable.params_figure, figs)}",
                )


def check_cycles(records: list[Record], graph: nx.DiGraph) -> Iterator[Problem]:
    """A cycle is reported once, at the edge that closes it, with the whole cycle."""
    by_paper = {r.paper.id: r for r in records}
    from .lineage import paper_graph

    for g in (graph, paper_graph(graph)):
        if nx.is_directed_acyclic_graph(g):  # one linear pass; find_cycle only when there is one
            continue
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            continue
        nodes = [u for u, _ in cycle] + [cycle[0][0]]
        u, v = cycle[-1][:2]
        owner = by_paper.get(v.partition("/")[0])
        if owner is None:
            continue
        index = next(
            (
                i
                for i, e in enumerate(owner.paper.lineage)
                if e.to.partition("/")[0] == v.partition("/")[0]
                and e.from_.partition("/")[0] == u.partition("/")[0]
            ),
            None,
        )
        loc = ("lineage", index) if index is not None else ("lineage",)
        yield owner.problem(loc, "lineage cycle: " + " → ".join(nodes))
        return


def check_all(records: list[Record], root: Path, broken: set[str] = frozenset()) -> list[Problem]:
    problems = [
        *check_ids(records),
        *check_course_notes(records),
        *check_nodes(records, root, broken),
    ]
    return problems
