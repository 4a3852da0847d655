"""The lineage graph in other formats: GraphML, node-link JSON, DOT and Mermaid.

Output is sorted, so the same graph gives the same bytes.
"""

from __future__ import annotations

import io
import json

import networkx as nx


def _flat(d: dict) -> dict:
    """Bilingual and list attributes flattened for GraphML (``why.en``, ``why.zh-Hant``)."""
    out = {}
    for k, v in sorted(d.items()):
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": str(vv) for kk, vv in sorted(v.items())})
        elif isinstance(v, list):
            out[k] = ",".join(map(str, v))
        elif v is not None:
            out[k] = v
    return out


def _sorted_copy(G: nx.DiGraph, flatten: bool = False) -> nx.DiGraph:
    H = nx.DiGraph()
    for n in sorted(G.nodes):
        H.add_node(n, **(_flat(G.nodes[n]) if flatten else G.nodes[n]))
    for u, v in sorted(G.edges):
        H.add_edge(u, v, **(_flat(G.edges[u, v]) if flatten else G.edges[u, v]))
    return H


def _label(G: nx.DiGraph, n: str) -> str:
    d = G.nodes[n]
    return d["name"]["en"] if d.get("kind") == "concept" else n


def export_graph(G: nx.DiGraph, fmt: str) -> str:
    """Return the graph as text in ``fmt`` (graphml, json, dot or mermaid)."""
    H = _sorted_copy(G, flatten=fmt == "graphml")
    if fmt == "graphml":
        buf = io.BytesIO()
        nx.write_graphml(H, buf, encoding="utf-8")
        return buf.getvalue().decode("utf-8")
    if fmt == "json":
        return (
            json.dumps(
                nx.node_link_data(H, edges="edges"), ensure_ascii=False, indent=1, sort_keys=True
            )
            + "\n"
        )
    ids = {n: f"n{i}" for i, n in enumerate(H.nodes)}
    if fmt == "dot":
        lines = ["digraph lineage {", "  rankdir=LR;"]
        lines += [
            f'  {ids[n]} [label="{_label(H, n)}", shape={"ellipse" if H.nodes[n].get("kind") == "concept" else "box"}];'
            for n in H.nodes
        ]
        lines += [
            f'  {ids[u]} -> {ids[v]} [label="{d["type"]}"];' for u, v, d in H.edges(data=True)
        ]
        return "\n".join(lines + ["}"]) + "\n"
    if fmt == "mermaid":
        lines = ["graph LR"]
        lines += [
            f'  {ids[n]}["{_label(H, n)}"]'
            if H.nodes[n].get("kind") != "concept"
            else f'  {ids[n]}("{_label(H, n)}")'
            for n in H.nodes
        ]
        lines += [f"  {ids[u]} -->|{d['type']}| {ids[v]}" for u, v, d in H.edges(data=True)]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}")
