"""The schema file in the repo is the one the model produces; every record points editors at it."""
import json

from kb.cli import main
from kb.knowledge.schema import EDGE_TYPES, json_schema

from .conftest import ROOT


def test_schema_file_is_in_sync_with_the_model():
    on_disk = json.loads((ROOT / "kb" / "paper.schema.json").read_text(encoding="utf-8"))
    assert on_disk == json_schema(), "run: kb schema > kb/paper.schema.json"


def test_kb_schema_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Paper"


def test_every_record_has_the_modeline():
    for path in sorted((ROOT / "papers").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../kb/paper.schema.json", path.name


def test_every_edge_type_is_documented():
    edge = json_schema()["$defs"]["Edge"]["properties"]["type"]
    assert set(edge["enum"]) <= set(EDGE_TYPES)
