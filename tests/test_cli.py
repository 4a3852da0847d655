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
    assert data["steps"][0] == {"from": "a/y", "to": "b", "type": "extends", "basis": "stated",
                                "evidence": "§1", "why": {"en": "a/y to b.", "zh-Hant": "從a/y到b。"}}


def test_path_without_a_path_exits_1_with_a_message(capsys):
    rc, out, err = run(capsys, "path", "d", "a")
    assert rc == 1 and out == "" and err.startswith("kb: error: no lineage path from 'd' to 'a'")


def test_plan_json(capsys):
    rc, out, _ = run(capsys, "plan", "d", "--json")
    assert json.loads(out) == {"target": "d", "order": ["a", "b", "c", "e", "d"]}


def test_show_json_is_the_validated_record(capsys):
    rc, out, _ = run(capsys, "show", "b", "--json")
    data = json.loads(out)
    assert data["id"] == "b" and data["lineage"][0]["from"] == "a/y" and "zh-Hant" in data["lineage"][0]["why"]


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
