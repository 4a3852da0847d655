"""A node's local lineage as an inline SVG: where it came from on the left, the node in
the centre (a paper with its concepts), what it led to on the right.

Side nodes are sorted by year and packed into columns of at most :data:`ROWS`, the
oldest column furthest left upstream and the newest furthest right downstream, so a
node with many neighbours stays readable. Every box is a link to its page, every edge
is coloured by its type and labelled from the source's side, so that the arrow reads as a
sentence ("gpt —extended by→ bert"); hovering an edge shows the sentence with the builder
as subject and its reason. Words come in both languages, each in a group of class
``kb-lang-en`` / ``kb-lang-zh`` (``lang`` set): ``assets/kb.css`` shows the one that
matches the page's English / 中文 tabs. Output is deterministic and every text escaped.
Links use ``xlink:href``: Material's instant loading rewrites every ``[href]`` in a page
and fails on an SVG link's read-only ``href``.

>>> import networkx as nx
>>> G = nx.DiGraph()
>>> G.add_node("a", kind="paper", title="A & B", year=2013); G.add_node("b", kind="paper", title="B", year=2015)
>>> svg = local_svg(G, "b", [{"from": "a", "to": "b", "type": "extends"}], [], lambda n: n + ".html")
>>> "A &amp; B" in svg and 'xlink:href="a.html"' in svg and ">extended by<" in svg and ">被…延伸<" in svg
True
>>> "<title>b extends a</title>" in svg and "<title>b 延伸 a 的做法</title>" in svg
True
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import networkx as nx

from ..knowledge.lineage import LANGS, edge_sentence, edge_verb

ROWS, BOX_W, BOX_H, GAP_Y, COL_GAP, CENTRE_GAP, PAD = 8, 190, 30, 10, 30, 150, 8
#: Edge type → stroke colour and dash pattern (shared with the explorer's legend).
EDGE_STYLE: dict[str, tuple[str, str]] = {
    "extends": ("#1f77b4", ""),
    "generalizes": ("#9467bd", ""),
    "inspired-by": ("#ff7f0e", "6 3"),
    "replaces": ("#d62728", ""),
    "uses": ("#2ca02c", "2 3"),
    "compares-with": ("#7f7f7f", "6 3"),
    "analyzes": ("#8c564b", "2 3"),
    "scales": ("#e377c2", ""),
    "part-of": ("#bbbbbb", "1 2"),
}
#: The class of each language's words in a diagram (kb.css shows one at a time).
LANG_CLASS = {"en": "kb-lang-en", "zh-Hant": "kb-lang-zh"}


def label(G: nx.DiGraph, node: str) -> str:
    """A node's short name: a paper's title, a concept's English name."""
    d = G.nodes[node]
    return d["name"]["en"] if d.get("kind") == "concept" else d.get("title", node)


def _clip(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _box(G, node, x, y, href, cls="kb-node", w=BOX_W) -> str:
    d = G.nodes[node]
    year = f" ({d['year']})" if d.get("year") else ""
    name = label(G, node)
    return (
        f'<a xlink:href="{escape(href(node))}" class="{cls}"><title>{escape(f"{node}: {name}{year}")}</title>'
        f'<rect x="{x:g}" y="{y:g}" width="{w}" height="{BOX_H}" rx="5" fill="#f5f5f5" stroke="#999999"/>'
        f'<text x="{x + PAD:g}" y="{y + BOX_H / 2 + 4:g}" fill="#222222">{escape(_clip(name + year, w // 7))}</text></a>'
    )


def _columns(G: nx.DiGraph, nodes: list[str]) -> list[list[str]]:
    ordered = sorted(nodes, key=lambda n: (G.nodes[n].get("year") or 0, n))
    return [ordered[i : i + ROWS] for i in range(0, len(ordered), ROWS)]


def local_svg(
    G: nx.DiGraph, centre: str, up: list[dict], down: list[dict], href: Callable[[str], str]
) -> str:
    """The SVG of ``centre`` with its incoming edges ``up`` and outgoing edges ``down``.

    Each edge is a dict with ``from``, ``to`` and ``type``; ``href(node)`` gives a link.
    """
    concept = G.nodes[centre].get("kind") == "concept"
    paper = G.nodes[centre].get("paper", centre)
    rows = (
        [centre]
        if concept
        else sorted(u for u in G.predecessors(centre) if G.nodes[u].get("paper") == centre)
    )
    left = _columns(G, sorted({e["from"] for e in up}))
    right = _columns(G, sorted({e["to"] for e in down}))
    tall = max([len(c) for c in left + right] + [len(rows) + 1])
    height = tall * (BOX_H + GAP_Y) + GAP_Y
    cx = len(left) * (BOX_W + COL_GAP) + (CENTRE_GAP - COL_GAP if left else 0)
    width = (
        cx + BOX_W + 20 + (CENTRE_GAP - COL_GAP + len(right) * (BOX_W + COL_GAP) if right else 0)
    )
    pos: dict[str, tuple[float, float]] = {}
    parts = []
    top = (height - (len(rows) + 1) * (BOX_H + GAP_Y)) / 2 + GAP_Y / 2
    parts.append(
        _box(
            G,
            paper,
            cx,
            top,
            href,
            "kb-node kb-centre" + ("" if concept else " kb-focus"),
            BOX_W + 20,
        )
    )
    pos[paper] = (cx, top)
    for i, n in enumerate(rows, 1):
        y = top + i * (BOX_H + GAP_Y)
        parts.append(
            _box(
                G, n, cx + 20, y, href, "kb-node kb-concept" + (" kb-focus" if n == centre else "")
            )
        )
        pos[n] = (cx + 20, y)
    for side, cols in (("up", left[::-1]), ("down", right)):
        for k, col in enumerate(cols):
            x = (
                cx - (k + 1) * (BOX_W + COL_GAP) - (CENTRE_GAP - COL_GAP)
                if side == "up"
                else cx + BOX_W + 20 + CENTRE_GAP + k * (BOX_W + COL_GAP)
            )
            y0 = (height - len(col) * (BOX_H + GAP_Y)) / 2 + GAP_Y / 2
            for i, n in enumerate(col):
                pos.setdefault(n, (x, y0 + i * (BOX_H + GAP_Y)))
                parts.append(_box(G, n, x, y0 + i * (BOX_H + GAP_Y), href))
    edges, labels = [], {}
    tagged = [(e, True) for e in up] + [(e, False) for e in down]
    for e, is_up in sorted(tagged, key=lambda t: (t[0]["from"], t[0]["to"], t[0]["type"])):
        (x1, y1), (x2, y2) = pos[e["from"]], pos[e["to"]]
        x1 += BOX_W + (20 if e["from"] == paper else 0)
        y1, y2 = y1 + BOX_H / 2, y2 + BOX_H / 2
        colour, dash = EDGE_STYLE.get(e["type"], ("#555555", ""))
        mid = (x1 + x2) / 2
        d = f"M{x1:g},{y1:g} C{mid:g},{y1:g} {mid:g},{y2:g} {x2 - 4:g},{y2:g}"
        stroke = f'stroke="{colour}"' + (f' stroke-dasharray="{dash}"' if dash else "")
        edges.append((d, stroke, {lang: _tooltip(e, lang) for lang in LANGS}))
        lx, ly, anchor = (x1 + 6, y1 - 4, "start") if is_up else (x2 - 6, y2 - 4, "end")
        # one label per place and type; its tooltip lists every edge it stands for
        label = labels.setdefault(
            (lx, ly, e["type"]), {"anchor": anchor, "colour": colour, "tips": []}
        )
        label["tips"].append({lang: _tooltip(e, lang) for lang in LANGS})
    words = []
    for lang in LANGS:
        group = [
            f'<path class="kb-edge" d="{d}" {stroke} marker-end="url(#kb-arrow)"><title>{escape(tip[lang])}</title></path>'
            for d, stroke, tip in edges
        ]
        group += [
            f'<text class="kb-edge-label" x="{lx:g}" y="{ly:g}" text-anchor="{lb["anchor"]}" fill="{lb["colour"]}">'
            f"<title>{escape(chr(10).join(t[lang] for t in lb['tips']))}</title>{escape(edge_verb(type_, lang))}</text>"
            for (lx, ly, type_), lb in labels.items()
        ]
        words.append((lang, group))
    edge_groups = "".join(
        f'<g class="{LANG_CLASS[lang]}" lang="{lang}">' + "".join(g[: len(edges)]) + "</g>"
        for lang, g in words
    )
    label_groups = "".join(
        f'<g class="{LANG_CLASS[lang]}" lang="{lang}">' + "".join(g[len(edges) :]) + "</g>"
        for lang, g in words
    )
    title = escape(f"Lineage of {centre}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" class="kb-lineage" viewBox="0 0 {width:g} {height:g}" '
        f'width="{width:g}" height="{height:g}" role="img" aria-label="{title}"><title>{title}</title>'
        '<defs><marker id="kb-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#777777"/></marker></defs>'
        + edge_groups
        + "".join(parts)
        + label_groups
        + "</svg>"
    )


def _tooltip(e: dict, lang: str) -> str:
    """An edge's hover text: the sentence with the builder as subject, then its reason if known."""
    sentence = edge_sentence(e, lang)
    why = (e.get("why") or {}).get(lang)
    return f"{sentence}{'：' if lang == 'zh-Hant' else ': '}{why}" if why else sentence
