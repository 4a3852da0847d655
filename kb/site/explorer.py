"""The whole lineage graph as JSON for the explorer page, with a layout computed here.

x is the year's column (distinct years only, so gaps in time cost no space); y is the
track's band, papers stacked inside a (track, year) cell by study order, each paper's
concepts indented under it. ``y2`` is a paper's place when concepts are hidden (the
explorer's default view, so that every label can be read at "Fit"). One pass over the
nodes: linear in the size of the graph. Edges carry their sentence in both languages.

>>> import networkx as nx
>>> G = nx.DiGraph()
>>> G.add_node("a", kind="paper", title="A", year=2013, track="nlp", curriculum=None)
>>> G.add_node("b", kind="paper", title="B", year=2015, track="cv", curriculum="01a")
>>> G.add_edge("a", "b", type="uses")
>>> data = graph_data(G, lambda n: f"papers/{n}.html")
>>> [(n["id"], n["short"], n["x"], n["y"], n["y2"]) for n in data["nodes"]]
[('a', 'a', 0, 100, 118), ('b', 'b', 260, 0, 0)]
>>> data["edges"][0]["en"], data["edges"][0]["zh"]
('b uses a', 'b 使用 a')
"""

from __future__ import annotations

import json
from collections.abc import Callable

import networkx as nx

from ..knowledge.lineage import edge_sentence
from ..knowledge.schema import TRACKS
from .diagram import EDGE_STYLE, label

COL_W, PAPER_H, CONCEPT_H, CONCEPT_DX, BAND_GAP = 260, 46, 26, 40, 54
COMPACT_H = 64  # a paper's row when concepts are hidden: the page is wider than the graph is tall
OTHER = "other"


def _track(d: dict) -> str:
    return d.get("track") or OTHER


def graph_data(G: nx.DiGraph, href: Callable[[str], str]) -> dict:
    """Nodes with positions and links, typed edges, and the filters' choices."""
    papers = sorted(
        (n for n, d in G.nodes(data=True) if d.get("kind") == "paper"),
        key=lambda n: (G.nodes[n].get("curriculum") or "~", n),
    )
    concepts: dict[str, list[str]] = {p: [] for p in papers}
    for n, d in sorted(G.nodes(data=True)):
        if d.get("kind") == "concept":
            concepts[d["paper"]].append(n)
    years = sorted({G.nodes[p]["year"] for p in papers})
    column = {y: i for i, y in enumerate(years)}
    tracks = [t for t in (*TRACKS, OTHER) if any(_track(G.nodes[p]) == t for p in papers)]

    def bands(height) -> dict[str, int]:
        fill: dict[tuple[str, int], int] = {}
        for p in papers:
            cell = (_track(G.nodes[p]), G.nodes[p]["year"])
            fill[cell] = fill.get(cell, 0) + height(p)
        band, top = {}, 0
        for t in tracks:
            band[t] = top
            top += max(h for (tt, _), h in fill.items() if tt == t) + BAND_GAP
        return band

    full = bands(lambda p: PAPER_H + CONCEPT_H * len(concepts[p]))
    compact = bands(lambda p: COMPACT_H)
    used: dict[tuple[str, int], int] = {}
    used2: dict[tuple[str, int], int] = {}
    nodes = []
    for p in papers:
        d = G.nodes[p]
        cell = (_track(d), d["year"])
        x, y = column[d["year"]] * COL_W, full[cell[0]] + used.get(cell, 0)
        y2 = compact[cell[0]] + used2.get(cell, 0)
        used[cell] = used.get(cell, 0) + PAPER_H + CONCEPT_H * len(concepts[p])
        used2[cell] = used2.get(cell, 0) + COMPACT_H
        nodes.append(
            {
                "id": p,
                "label": label(G, p),
                "short": p,
                "kind": "paper",
                "year": d["year"],
                "track": cell[0],
                "course": d.get("curriculum") or "",
                "url": href(p),
                "x": x,
                "y": y,
                "y2": y2,
            }
        )
        for k, c in enumerate(concepts[p], 1):
            nodes.append(
                {
                    "id": c,
                    "label": label(G, c),
                    "short": c.split("/", 1)[1],
                    "name_zh": G.nodes[c]["name"]["zh-Hant"],
                    "kind": "concept",
                    "paper": p,
                    "year": d["year"],
                    "track": cell[0],
                    "url": href(c),
                    "x": x + CONCEPT_DX,
                    "y": y + k * CONCEPT_H,
                }
            )
    nodes.sort(key=lambda n: n["id"])
    edges = [
        {
            "source": u,
            "target": v,
            "type": e["type"],
            "en": edge_sentence((u, v, e["type"]), "en"),
            "zh": edge_sentence((u, v, e["type"]), "zh-Hant"),
        }
        for u, v, e in sorted(G.edges(data=True))
    ]
    return {
        "nodes": nodes,
        "edges": edges,
        "tracks": tracks,
        "years": [years[0], years[-1]] if years else [],
        "types": {
            t: {"colour": c, "dash": s}
            for t, (c, s) in EDGE_STYLE.items()
            if any(e["type"] == t for e in edges)
        },
    }


def graph_json(G: nx.DiGraph, href: Callable[[str], str]) -> str:
    """:func:`graph_data` as compact, key-sorted JSON (the same graph gives the same bytes)."""
    return (
        json.dumps(graph_data(G, href), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        + "\n"
    )
