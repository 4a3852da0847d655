"""Lineage queries on a five-paper fixture whose answers are worked out by hand."""

import networkx as nx
import pytest

import kb
from kb.errors import NoPath, NotFound
from kb.knowledge import lineage as L

from .conftest import DATA, ROOT


@pytest.fixture(scope="module")
def G():
    return kb.load(DATA / "mini", strict=True).graph


def test_graph_is_a_plain_digraph_with_kinds(G):
    assert type(G) is nx.DiGraph
    assert G.nodes["a"]["kind"] == "paper" and G.nodes["a/x"]["kind"] == "concept"
    assert G.edges["a/x", "a"]["type"] == "part-of"
    assert G.edges["a/y", "b"]["why"] == {"en": "a/y to b.", "zh-Hant": "從a/y到b。"}


def test_ancestors_of_a_paper_include_its_concepts_sources_but_not_its_concepts(G):
    # a/y comes in twice over: as a concept of the ancestor a, and as the source of b
    assert kb.ancestors(G, "d") == ["a/x", "c", "e", "a", "a/y", "b"]


def test_depth_counts_part_of_as_zero(G):
    assert kb.ancestors(G, "d", depth=1) == ["a/x", "c", "e"]
    assert kb.descendants(G, "a", depth=1) == ["b", "e", "d", "d/m"]


def test_descendants_of_a_concept_leave_out_its_own_paper(G):
    assert "a" not in kb.descendants(G, "a/x")


def test_path_starts_from_a_papers_concept_when_needed(G):
    assert kb.path(G, "a", "c") == ["a/y", "b", "c"]
    assert [s["type"] for s in kb.steps(G, kb.path(G, "a/y", "d/n"))] == [
        "extends",
        "replaces",
        "generalizes",
    ]


def test_no_path_against_the_edges(G):
    with pytest.raises(NoPath, match=r"no lineage path from 'd' to 'a'"):
        kb.path(G, "d", "a")


def test_unknown_node_suggests_closest(G):
    with pytest.raises(NotFound, match=r"unknown node 'a/xx' \(did you mean 'a/x'\?\)"):
        kb.ancestors(G, "a/xx")


def test_plan_orders_ancestors_before_descendants_ties_by_year(G):
    order = kb.plan(G, "d")
    assert order[-1] == "d" and set(order) == {"a", "b", "c", "e", "d"}
    assert order.index("b") < order.index("c") and order.index("a") < order.index("e")
    assert order == ["a", "b", "c", "e", "d"]


def test_plan_prefers_study_order(G):
    H = G.copy()
    H.nodes["e"]["curriculum"] = "01a"  # a course paper is read before a non-course paper
    assert kb.plan(H, "d") == ["a", "e", "b", "c", "d"]


def test_paper_graph_contracts_concepts(G):
    P = kb.paper_graph(G)
    assert set(P.edges) == {("a", "b"), ("b", "c"), ("a", "e"), ("a", "d"), ("c", "d"), ("e", "d")}


def _reference_related(G, node, direction, depth):
    """The plain networkx formulation the fast walk must agree with (Dijkstra, part-of = 0)."""
    own = {node, *L.concepts_of(G, node)} if G.nodes[node].get("kind") == "paper" else {node}
    if G.nodes[node].get("kind") == "concept":
        own.add(L.paper_of(G, node))
    view = G.reverse(copy=False) if direction == "up" else G
    dist = nx.multi_source_dijkstra_path_length(
        view,
        own if direction == "down" else {node},
        cutoff=depth,
        weight=lambda u, v, d: 0 if d.get("type") == "part-of" else 1,
    )
    return sorted(
        (n for n in dist if n not in own), key=lambda n: (dist[n], G.nodes[n].get("year") or 0, n)
    )


def _reference_plan(G, target):
    P = L.paper_graph(G)
    target = L.paper_of(G, target)
    needed = nx.ancestors(P, target) | {target}
    return list(
        nx.lexicographical_topological_sort(P.subgraph(needed), key=lambda n: L.study_key(G, n))
    )


@pytest.mark.parametrize("depth", [None, 1, 2])
def test_fast_queries_agree_with_networkx_on_every_node_of_the_real_kb(depth):
    G = kb.load(ROOT).graph
    for n in G.nodes:
        for direction in ("up", "down"):
            assert L.related(G, n, direction, depth) == _reference_related(
                G, n, direction, depth
            ), (n, direction)
        if depth is None:
            assert L.plan(G, n) == _reference_plan(G, n), n


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_sources_within_is_the_paper_graph_ball_on_every_node_of_the_real_kb(steps):
    G = kb.load(ROOT).graph
    P = L.paper_graph(G).reverse()
    for n in G.nodes:
        target = L.paper_of(G, n)
        ball = set(nx.single_source_shortest_path_length(P, target, cutoff=steps)) - {target}
        assert L.sources_within(G, n, steps) == ball, n
        assert ball <= set(L.plan(G, n))


# --- edges in words: kb/data/edge_phrases.yaml -------------------------------------------

#: Hand-written expectations, builder reading (to is the subject) and source reading (from is
#: the subject), for the edge ``gpt → bert`` of every type: "bert <type> gpt".
WORDING = {
    "extends": (
        "bert extends gpt",
        "gpt is extended by bert",
        "bert 延伸 gpt 的做法",
        "gpt 被 bert 延伸",
    ),
    "generalizes": (
        "bert generalizes gpt",
        "gpt is generalized by bert",
        "bert 將 gpt 推廣為更一般的形式",
        "gpt 是 bert 的特例",
    ),
    "inspired-by": (
        "bert is inspired by gpt",
        "gpt inspires bert",
        "bert 受 gpt 啟發",
        "gpt 啟發了 bert",
    ),
    "replaces": (
        "bert replaces gpt",
        "gpt is replaced by bert",
        "bert 取代 gpt",
        "gpt 被 bert 取代",
    ),
    "uses": ("bert uses gpt", "gpt is used by bert", "bert 使用 gpt", "gpt 被 bert 使用"),
    "compares-with": (
        "bert compares itself with gpt",
        "gpt is a baseline for bert",
        "bert 與 gpt 比較",
        "gpt 是 bert 的比較對象",
    ),
    "analyzes": (
        "bert analyzes gpt",
        "gpt is analyzed by bert",
        "bert 分析 gpt",
        "gpt 被 bert 分析",
    ),
    "scales": (
        "bert scales up gpt",
        "gpt is scaled up by bert",
        "bert 將 gpt 擴大規模",
        "gpt 被 bert 擴大規模",
    ),
    "part-of": (
        "bert contains gpt",
        "gpt is part of bert",
        "bert 包含 gpt",
        "gpt 是 bert 的一部分",
    ),
}


def test_every_edge_type_has_phrases_in_both_languages_and_readings():
    from kb.knowledge.schema import EDGE_TYPES

    table = L.edge_phrases()
    assert set(table) == set(EDGE_TYPES) == set(WORDING)
    for t, langs in table.items():
        assert set(langs) == {"en", "zh-Hant"}, t
        for lang, readings in langs.items():
            assert set(readings) == {"builder", "source"}, (t, lang)
            for reading, entry in readings.items():
                s = entry["sentence"]
                assert s.count("{from}") == 1 and s.count("{to}") == 1, (t, lang, reading)
                # the builder reading puts the builder (to) first, the source reading the source
                first = "{to}" if reading == "builder" else "{from}"
                assert s.index(first) == 0, (t, lang, reading)
                assert entry["verb"], (t, lang, reading)


@pytest.mark.parametrize("type_", sorted(WORDING))
def test_edge_sentence_reads_the_builder_as_subject_or_the_source_in_the_passive(type_):
    en_b, en_s, zh_b, zh_s = WORDING[type_]
    edge = ("gpt", "bert", type_)
    assert L.edge_sentence(edge) == en_b
    assert L.edge_sentence(edge, "en", "source") == en_s
    assert L.edge_sentence(edge, "zh-Hant", "builder") == zh_b
    assert L.edge_sentence(edge, "zh-Hant", "source") == zh_s
    # a dict (what steps() and the pages hold) reads the same as the tuple
    assert (
        L.edge_sentence({"from": "gpt", "to": "bert", "type": type_}, "zh-Hant", "source") == zh_s
    )


def test_edge_sentence_names_nodes_once_and_leaves_braces_in_names_alone():
    names = {"gpt": "{to}", "bert": "BERT"}
    assert L.edge_sentence(("gpt", "bert", "extends"), name=names.get) == "BERT extends {to}"


def test_edge_verb_labels_an_arrow_from_the_source_side():
    assert [L.edge_verb("uses", lang) for lang in ("en", "zh-Hant")] == ["used by", "被…使用"]
    assert L.edge_verb("uses", reading="builder") == "uses"
    with pytest.raises(
        ValueError, match=r"unknown edge type 'extend' \(did you mean 'extends'\?\)"
    ):
        L.edge_verb("extend")
    with pytest.raises(ValueError, match="lang must be one of"):
        L.edge_sentence(("a", "b", "uses"), "zh")


def test_paths_lists_chains_shortest_first_from_a_paper_or_its_concepts(G):
    assert kb.paths(G, "a", "d", k=5) == [
        ["a", "e", "d"],
        ["a/x", "d/m", "d"],
        ["a/y", "b", "c", "d/n", "d"],
    ]
    assert kb.paths(G, "a", "d", k=2) == kb.paths(G, "a", "d", k=5)[:2]
    assert kb.paths(G, "a", "d", k=1) == [kb.path(G, "a", "d")]
    # a chain never starts over from a later start: a/y → … never runs through a
    assert all(
        p.count("a") + p.count("a/x") + p.count("a/y") == 1 for p in kb.paths(G, "a", "d", k=5)
    )


def test_paths_errors_like_path(G):
    with pytest.raises(NoPath, match=r"no lineage path from 'd' to 'a'"):
        kb.paths(G, "d", "a", k=3)
    with pytest.raises(NotFound, match=r"unknown node 'dd'"):
        kb.paths(G, "a", "dd")
    with pytest.raises(ValueError, match="k must be at least 1, not 0"):
        kb.paths(G, "a", "d", k=0)
