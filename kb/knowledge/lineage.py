"""The lineage graph and the questions people ask of it, as plain functions.

Direction, stated once: an edge ``u → v`` means *v builds on u*. Ancestors are
where an idea came from; descendants are what it led to.

Nodes are papers (``kind='paper'``) and concepts inside papers
(``kind='concept'``, id ``paper/concept``). Each concept has a ``part-of`` edge to
its paper, so the ancestors of ``bert`` include the ancestors of ``bert/mlm``.
``part-of`` steps count as distance 0 in depth-limited queries.

>>> G = nx.DiGraph()
>>> G.add_node("a", kind="paper", year=2013); G.add_node("b", kind="paper", year=2017)
>>> G.add_node("c", kind="paper", year=2019); G.add_edge("a", "b", type="extends"); G.add_edge("b", "c", type="uses")
>>> ancestors(G, "c")
['b', 'a']
>>> path(G, "a", "c")
['a', 'b', 'c']
>>> plan(G, "c")
['a', 'b', 'c']
>>> edge_sentence(("a", "b", "extends"))
'b extends a'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Literal

import networkx as nx

from ..errors import NoPath, NotFound, did_you_mean
from . import yamlio
from .schema import Paper

#: The phrase table, ``kb/data/edge_phrases.yaml`` (beside the glossary).
PHRASES = Path(__file__).resolve().parent.parent / "data" / "edge_phrases.yaml"
LANGS = ("en", "zh-Hant")
READINGS = ("builder", "source")


def build_graph(papers: Iterable[Paper]) -> nx.DiGraph:
    """Papers and their concepts as nodes; lineage and ``part-of`` as edges."""
    G = nx.DiGraph()
    papers = list(papers)
    for p in papers:
        G.add_node(
            p.id,
            kind="paper",
            title=p.title,
            year=p.year,
            track=p.track,
            curriculum=p.curriculum,
            tags=list(p.tags),
        )
        for c in p.concepts:
            node = f"{p.id}/{c.id}"
            G.add_node(
                node,
                kind="concept",
                paper=p.id,
                year=p.year,
                track=p.track,
                name={"en": c.name.en, "zh-Hant": c.name.zh_hant},
            )
            G.add_edge(
                node,
                p.id,
                type="part-of",
                basis="stated",
                evidence="",
                why={
                    "en": f"{c.name.en} is part of {p.title}.",
                    "zh-Hant": f"{c.name.zh_hant}是〈{p.title}〉的一部分。",
                },
            )
    for p in papers:
        for e in p.lineage:
            if e.from_ in G and e.to in G:
                G.add_edge(
                    e.from_,
                    e.to,
                    type=e.type,
                    basis=e.basis,
                    evidence=e.evidence,
                    why={"en": e.why.en, "zh-Hant": e.why.zh_hant},
                )
    return G


def paper_of(G: nx.DiGraph, node: str) -> str:
    """The paper a node belongs to (a paper belongs to itself)."""
    return G.nodes[node].get("paper", node)


def concepts_of(G: nx.DiGraph, paper: str) -> list[str]:
    return sorted(u for u in G.predecessors(paper) if G.nodes[u].get("paper") == paper)


def paper_graph(G: nx.DiGraph) -> nx.DiGraph:
    """Papers only: ``P → Q`` when any node of P leads to any node of Q."""
    P = nx.DiGraph()
    P.add_nodes_from((n, d) for n, d in G.nodes(data=True) if d.get("kind") == "paper")
    for u, v, d in G.edges(data=True):
        a, b = paper_of(G, u), paper_of(G, v)
        if a != b and not P.has_edge(a, b):
            P.add_edge(a, b, type=d.get("type"))
    return P


def _require(G: nx.DiGraph, node: str) -> None:
    if node not in G:
        raise NotFound(f"unknown node {node!r}{did_you_mean(node, G.nodes)}")


def _weight(u: str, v: str, d: dict) -> int:
    return 0 if d.get("type") == "part-of" else 1


def ancestors(G: nx.DiGraph, node: str, depth: int | None = None) -> list[str]:
    """Where ``node`` came from, nearest first (see :func:`related`)."""
    return related(G, node, "up", depth)


def descendants(G: nx.DiGraph, node: str, depth: int | None = None) -> list[str]:
    """What ``node`` led to, nearest first (see :func:`related`)."""
    return related(G, node, "down", depth)


def related(
    G: nx.DiGraph, node: str, direction: Literal["up", "down"] = "up", depth: int | None = None
) -> list[str]:
    """Nodes ``node`` came from (``up``) or led to (``down``), nearest first.

    For a paper, its own concepts are searched from too and left out of the answer.
    """
    _require(G, node)
    own = {node, *concepts_of(G, node)} if G.nodes[node].get("kind") == "paper" else {node}
    if G.nodes[node].get("kind") == "concept":
        own.add(paper_of(G, node))
    adj = G.pred if direction == "up" else G.succ
    dist = _zero_one_bfs(adj, own if direction == "down" else {node}, depth)
    found = [n for n in dist if n not in own]
    return sorted(found, key=lambda n: (dist[n], G.nodes[n].get("year") or 0, n))


def _zero_one_bfs(adj, sources: set[str], depth: int | None) -> dict[str, int]:
    """Distances from ``sources`` where ``part-of`` steps cost 0 and lineage steps 1 (a deque
    instead of Dijkstra's heap: linear in the nodes reached)."""
    dist = dict.fromkeys(sources, 0)
    queue = deque(sources)
    while queue:
        u = queue.popleft()
        du = dist[u]
        for v, d in adj[u].items():
            w = 0 if d.get("type") == "part-of" else 1
            dv = du + w
            if (depth is not None and dv > depth) or dist.get(v, dv + 1) <= dv:
                continue
            dist[v] = dv
            queue.appendleft(v) if w == 0 else queue.append(v)
    return dist


def path(G: nx.DiGraph, a: str, b: str) -> list[str]:
    """The shortest chain ``a → … → b``; from a paper, its concepts may start it.

    The first of :func:`paths`.
    """
    return paths(G, a, b, 1)[0]


class _Start:
    """The one node every chain starts from in :func:`paths` (a paper and its concepts hang off it)."""

    def __repr__(self) -> str:
        return "<start>"


def paths(G: nx.DiGraph, a: str, b: str, k: int = 3) -> list[list[str]]:
    """Up to ``k`` chains ``a → … → b``, shortest first.

    From a paper, its concepts may start a chain (as in :func:`path`). Built on networkx's
    ``shortest_simple_paths`` over the nodes ``b`` comes from, so a short answer is cheap
    on a large graph; chains of equal length come in a stable order.

    Parameters
    ----------
    G : nx.DiGraph
        The lineage graph (:func:`build_graph`).
    a, b : str
        Where the chains start and end (papers or concepts).
    k : int
        How many chains at most (at least 1).

    Returns
    -------
    list of list of str
        Each chain as its nodes; :func:`steps` gives its reasons.

    Raises
    ------
    NotFound
        ``a`` or ``b`` is not in the graph.
    NoPath
        No chain leads from ``a`` to ``b``.

    Examples
    --------
    >>> G = nx.DiGraph()
    >>> G.add_edges_from([("lstm", "seq2seq"), ("seq2seq", "transformer"), ("lstm", "transformer")], type="uses")
    >>> paths(G, "lstm", "transformer")
    [['lstm', 'transformer'], ['lstm', 'seq2seq', 'transformer']]
    >>> paths(G, "lstm", "transformer", k=1) == [path(G, "lstm", "transformer")]
    True
    """
    _require(G, a)
    _require(G, b)
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    reach = nx.ancestors(G, b) | {b}
    starts = [
        s
        for s in ([a, *concepts_of(G, a)] if G.nodes[a].get("kind") == "paper" else [a])
        if s in reach
    ]
    if not starts:
        raise NoPath(
            f"no lineage path from {a!r} to {b!r} (edges run from an idea to what builds on it; "
            f"try `kb path {b} {a}` or `kb lineage {b} --up`)"
        )
    first = set(starts)
    start = _Start()
    H = nx.DiGraph()
    H.add_nodes_from(sorted(reach))
    # no chain comes back into a start: that would be the same chain begun later
    H.add_edges_from(sorted((u, v) for u, v in G.subgraph(reach).edges if v not in first))
    H.add_edges_from((start, s) for s in starts)
    return [found[1:] for found in islice(nx.shortest_simple_paths(H, start, b), k)]


def steps(G: nx.DiGraph, nodes: list[str]) -> list[dict]:
    """The reasons along a path: one dict per edge."""
    return [
        {
            "from": u,
            "to": v,
            "type": G.edges[u, v]["type"],
            "why": dict(G.edges[u, v]["why"]),
            "basis": G.edges[u, v].get("basis"),
            "evidence": G.edges[u, v].get("evidence"),
        }
        for u, v in zip(nodes, nodes[1:])
    ]


def sources_within(G: nx.DiGraph, target: str, steps: int) -> set[str]:
    """The papers ``target`` builds on at most ``steps`` paper-to-paper lineage steps away."""
    target = paper_of(G, target)
    seen, frontier = {target}, [target]
    for _ in range(steps):
        frontier = {p for q in frontier for p in source_papers(G, q)} - seen
        seen |= frontier
    return seen - {target}


def source_papers(G: nx.DiGraph, paper: str) -> set[str]:
    """The other papers with an edge into ``paper`` or into one of its concepts."""
    return {paper_of(G, u) for node in (paper, *concepts_of(G, paper)) for u in G.pred[node]} - {
        paper
    }


def study_key(G: nx.DiGraph, paper: str) -> tuple:
    d = G.nodes[paper]
    return (d.get("curriculum") or "~", d.get("year") or 0, paper)


def plan(G: nx.DiGraph, target: str) -> list[str]:
    """Papers to read before ``target``, in an order that respects lineage, ending with it.

    Ties are broken by study order (course papers first), then year, then id. Only the
    papers ``target`` comes from are visited (not the whole graph).
    """
    _require(G, target)
    target = paper_of(G, target)
    P = nx.DiGraph()
    P.add_node(target)
    stack = [target]
    while stack:  # walk up paper by paper
        q = stack.pop()
        for p in source_papers(G, q):
            if p not in P:
                stack.append(p)
            P.add_edge(p, q)
    return list(nx.lexicographical_topological_sort(P, key=lambda n: study_key(G, n)))


@lru_cache(maxsize=1)
def edge_phrases() -> dict[str, dict[str, dict[str, dict[str, str]]]]:
    """The phrase table: ``edge_phrases()[type][lang][reading]`` is ``{verb, sentence}``.

    ``lang`` is ``en`` or ``zh-Hant``; ``reading`` is ``builder`` (the node that builds is
    the subject: "bert extends gpt") or ``source`` (the earlier idea is the subject: "gpt is
    extended by bert"). Read once from ``kb/data/edge_phrases.yaml``.

    >>> edge_phrases()["uses"]["en"]["source"]
    {'verb': 'used by', 'sentence': '{from} is used by {to}'}
    """
    return yamlio.load(PHRASES.read_text(encoding="utf-8"))


def _entry(type_: str, lang: str, reading: str) -> dict[str, str]:
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    if reading not in READINGS:
        raise ValueError(f"reading must be one of {READINGS}, not {reading!r}")
    table = edge_phrases()
    if type_ not in table:
        raise ValueError(f"unknown edge type {type_!r}{did_you_mean(type_, table)}")
    return table[type_][lang][reading]


def edge_verb(type_: str, lang: str = "en", reading: str = "source") -> str:
    """The short label for an edge type: what an arrow ``from → to`` is captioned with.

    The default ``source`` reading reads along the arrow ("gpt —extended by→ bert");
    ``builder`` reads against it, for a list on the builder's page ("extends gpt").

    Parameters
    ----------
    type_ : str
        An edge type (``extends``, ``uses``, …, or ``part-of``).
    lang : {"en", "zh-Hant"}
    reading : {"source", "builder"}

    Examples
    --------
    >>> edge_verb("extends"), edge_verb("extends", "zh-Hant"), edge_verb("extends", reading="builder")
    ('extended by', '被…延伸', 'extends')
    """
    return _entry(type_, lang, reading)["verb"]


def edge_sentence(
    edge, lang: str = "en", reading: str = "builder", name: Callable[[str], str] = str
) -> str:
    """An edge as a true sentence: the builder as subject, or the source in the passive.

    Parameters
    ----------
    edge : tuple or dict
        ``(from, to, type)``, or a dict with ``from``, ``to`` and ``type`` (what
        :func:`steps` and the site's edge lists hold).
    lang : {"en", "zh-Hant"}
    reading : {"builder", "source"}
        ``builder``: "bert extends gpt"; ``source``: "gpt is extended by bert".
    name : callable, optional
        Turns a node id into the text written for it (a title, a Markdown link); the
        caller escapes what it returns.

    Returns
    -------
    str
        The clause, without a full stop.

    Examples
    --------
    Three nodes, ``lstm → seq2seq → transformer`` (each builds on the one before):

    >>> G = nx.DiGraph()
    >>> G.add_edge("lstm", "seq2seq", type="uses"); G.add_edge("seq2seq", "transformer", type="replaces")
    >>> [edge_sentence((u, v, d["type"])) for u, v, d in G.edges(data=True)]
    ['seq2seq uses lstm', 'transformer replaces seq2seq']
    >>> edge_sentence(("lstm", "seq2seq", "uses"), "zh-Hant", "source", name=str.upper)
    'LSTM 被 SEQ2SEQ 使用'
    """
    if isinstance(edge, dict):
        u, v, type_ = edge["from"], edge["to"], edge["type"]
    else:
        u, v, type_ = edge
    template = _entry(type_, lang, reading)["sentence"]
    # one pass, so a name that itself contains "{to}" is left alone
    a, b = (
        ("{from}", "{to}")
        if template.index("{from}") < template.index("{to}")
        else ("{to}", "{from}")
    )
    head, rest = template.split(a, 1)
    mid, tail = rest.split(b, 1)
    names = {"{from}": name(u), "{to}": name(v)}
    return head + names[a] + mid + names[b] + tail
