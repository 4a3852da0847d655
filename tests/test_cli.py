"""The kb command on the five-paper fixture: JSON shapes, exit codes, formats."""

import json
import xml.etree.ElementTree as ET

import pytest

from kb.cli import main

from .conftest import DATA

MINI = str(DATA / "mini")


def run(capsys, *argv):
    rc = main(["--root", MINI, *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_lineage_json(capsys):
    rc, out, _ = run(capsys, "lineage", "d", "--up", "--depth", "1", "--json")
    data = json.loads(out)
    assert rc == 0 and data["node"] == "d" and data["nodes"] == ["a/x", "c", "e"]


def test_path_json_has_reasons_in_both_languages(capsys):
    rc, out, _ = run(capsys, "path", "a/y", "d/n", "--json")
    data = json.loads(out)
    assert data["nodes"] == ["a/y", "b", "c", "d/n"]
    assert data["steps"][0] == {
        "from": "a/y",
        "to": "b",
        "type": "extends",
        "basis": "stated",
        "evidence": "§1",
        "why": {"en": "a/y to b.", "zh-Hant": "從a/y到b。"},
    }


def test_path_without_a_path_exits_1_with_a_message(capsys):
    rc, out, err = run(capsys, "path", "d", "a")
    assert rc == 1 and out == "" and err.startswith("kb: error: no lineage path from 'd' to 'a'")


def test_plan_json(capsys):
    rc, out, _ = run(capsys, "plan", "d", "--json")
    assert json.loads(out) == {"target": "d", "order": ["a", "b", "c", "e", "d"]}


def test_show_json_is_the_validated_record(capsys):
    rc, out, _ = run(capsys, "show", "b", "--json")
    data = json.loads(out)
    assert (
        data["id"] == "b"
        and data["lineage"][0]["from"] == "a/y"
        and "zh-Hant" in data["lineage"][0]["why"]
    )


def test_show_unknown_paper_suggests(capsys):
    rc, _, err = run(capsys, "show", "bb")
    assert rc == 1 and "no paper 'bb' (did you mean 'b'?)" in err


@pytest.mark.parametrize("fmt", ["graphml", "json", "dot", "mermaid"])
def test_graph_export_formats(capsys, fmt):
    rc, out, _ = run(capsys, "graph", "--format", fmt)
    assert rc == 0
    if fmt == "graphml":
        ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
        root = ET.fromstring(out)
        assert len(root.findall(".//g:node", ns)) == 9
        keys = {k.get("attr.name") for k in root.findall("g:key", ns)}
        assert {"why.en", "why.zh-Hant", "kind"} <= keys
    elif fmt == "json":
        assert len(json.loads(out)["edges"]) == 10
    elif fmt == "dot":
        assert out.startswith("digraph lineage {") and out.count("->") == 10
    else:
        assert out.startswith("graph LR") and out.count("-->") == 10


def test_graph_export_is_deterministic(capsys):
    first = run(capsys, "graph", "--format", "json")[1]
    assert run(capsys, "graph", "--format", "json")[1] == first


def test_root_is_found_from_a_subfolder(monkeypatch, capsys):
    monkeypatch.chdir(DATA / "mini" / "papers")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("OK: 5 records")


def test_unexpected_errors_say_so_with_a_traceback(monkeypatch, capsys):
    import kb.cli

    monkeypatch.setattr(kb.cli, "load", lambda *a, **k: 1 / 0)
    assert main(["--root", MINI, "validate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kb: unexpected error") and "ZeroDivisionError" in err


def test_path_text_makes_the_builder_the_subject_of_each_step(capsys):
    # b → c is "c replaces b": the old output "b —replaces→ c" read as "b replaces c"
    rc, out, _ = run(capsys, "path", "a/y", "c")
    assert rc == 0 and out.splitlines() == [
        "a/y → b → c",
        "  b extends a/y: a/y to b.",
        "  b 延伸 a/y 的做法：從a/y到b。",
        "  c replaces b: b to c.",
        "  c 取代 b：從b到c。",
    ]


def test_path_k_lists_chains_shortest_first_text_and_json(capsys):
    rc, out, _ = run(capsys, "path", "a", "d", "--k", "3", "--json")
    data = json.loads(out)
    chains = [c["nodes"] for c in data["paths"]]
    assert rc == 0 and chains == [
        ["a", "e", "d"],
        ["a/x", "d/m", "d"],
        ["a/y", "b", "c", "d/n", "d"],
    ]
    # nodes/steps stay the shortest chain, with from/to as before --k
    assert (
        data["nodes"] == chains[0]
        and data["steps"][0]["from"] == "a"
        and data["steps"][0]["to"] == "e"
    )
    assert [s["type"] for s in data["paths"][2]["steps"]] == [
        "extends",
        "replaces",
        "generalizes",
        "part-of",
    ]
    rc, out, _ = run(capsys, "path", "a", "d", "--k", "5")
    lines = out.splitlines()
    assert [x for x in lines if x[:1].isdigit()] == [
        "1. a → e → d (2 steps)",
        "2. a/x → d/m → d (2 steps)",
        "3. a/y → b → c → d/n → d (4 steps)",
    ]
    assert (
        "  d/m is inspired by a/x: a/x to d/m." in lines
        and "  d/m 受 a/x 啟發：從a/x到d/m。" in lines
    )
    assert lines[-1] == "(only 3 chains from a to d)"


def test_path_k_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--root", MINI, "path", "a", "d", "--k", "0"])
    assert e.value.code == 2
    assert "argument --k: expected a whole number of at least 1, not '0'" in capsys.readouterr().err


def test_lineage_text_makes_each_listed_node_the_subject(capsys):
    rc, out, _ = run(capsys, "lineage", "c", "--up")
    assert rc == 0 and out.splitlines() == [
        "c came from:",
        "  b",
        "    b is replaced by c",
        "    b 被 c 取代",
        "  a/y",
        "    a/y is extended by b",
        "    a/y 被 b 延伸",
    ]
    rc, out, _ = run(capsys, "lineage", "b", "--down")
    assert out.splitlines() == [
        "b led to:",
        "  c",
        "    c replaces b",
        "    c 取代 b",
        "  d",
        "  d/n",
        "    d/n generalizes c",
        "    d/n 將 c 推廣為更一般的形式",
    ]


def test_path_k_on_the_real_kb_lists_the_chain_through_attention(capsys):
    from .conftest import ROOT

    rc = main(["--root", str(ROOT), "path", "lstm", "transformer", "--k", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    chains = [c["nodes"] for c in data["paths"]]
    assert rc == 0 and len(chains) == 3 and chains[0] == ["lstm", "seq2seq", "transformer"]
    assert ["lstm", "seq2seq", "attention", "transformer"] in chains
    assert [len(c) for c in chains] == sorted(len(c) for c in chains)
    assert data["paths"][0]["steps"][0] == {
        **data["steps"][0],
        "from": "lstm",
        "to": "seq2seq",
        "type": "uses",
    }


def test_path_and_lineage_text_read_true_for_every_edge_type(tmp_path, capsys):
    """One source paper per edge type into a hub: kb path says "hub <verb> s-<type>" and kb
    lineage --up says "s-<type> <passive> hub", in the hand-written words of test_lineage."""
    from kb.knowledge.schema import EDGE_TYPES

    from .test_lineage import WORDING

    (tmp_path / "papers").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n", encoding="utf-8")
    types = [t for t in EDGE_TYPES if t != "part-of"]
    for i, t in enumerate(types):
        (tmp_path / "papers" / f"s-{t}.yaml").write_text(
            f"id: s-{t}\ntitle: S\nauthors: [A B]\nyear: {2000 + i}\n", encoding="utf-8"
        )
    edges = "".join(
        f"  - {{from: s-{t}, to: hub, type: {t}, why: {{en: W., zh-Hant: 理由。}}, "
        f"evidence: x, basis: stated}}\n"
        for t in types
    )
    (tmp_path / "papers" / "hub.yaml").write_text(
        f"id: hub\ntitle: Hub\nauthors: [A B]\nyear: 2020\nlineage:\n{edges}", encoding="utf-8"
    )
    assert main(["--root", str(tmp_path), "lineage", "hub", "--up"]) == 0
    up = capsys.readouterr().out.splitlines()
    for t in types:
        en_b, en_s, zh_b, zh_s = (
            w.replace("bert", "hub").replace("gpt", f"s-{t}") for w in WORDING[t]
        )
        assert main(["--root", str(tmp_path), "path", f"s-{t}", "hub"]) == 0
        assert capsys.readouterr().out.splitlines() == [
            f"s-{t} → hub",
            f"  {en_b}: W.",
            f"  {zh_b}：理由。",
        ], t
        assert f"    {en_s}" in up and f"    {zh_s}" in up, t
