"""The schema file in the repo is the one the model produces; every record points editors at it;
a peer validator (check-jsonschema) accepts the schema and every record, and rejects the bad
fixtures kb validate rejects wherever a schema can see the fault."""

import json
import re
import subprocess
import sys

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


# ---------------------------------------------------------------- a peer validator agrees


def check_jsonschema(*args: str) -> dict:
    """Run check-jsonschema (the validator editors' tooling uses) and return its JSON report.
    Its default regex variant is ECMA-262 in unicode mode, the dialect JSON Schema specifies."""
    out = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--output-format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def test_schema_is_valid_under_its_metaschema_with_ecma_262_patterns():
    report = check_jsonschema("--check-metaschema", "kb/paper.schema.json")
    assert report["status"] == "ok", report


def test_ecma_262_rejects_the_escaped_quote_the_url_pattern_used_to_have(tmp_path):
    """The check above can fail: ``\\"`` is an invalid escape in a unicode-mode ECMA regex."""
    old = json_schema()
    old["$defs"]["Reading"]["properties"]["url"]["pattern"] = r"^https?://[^\s<>\"']+$"
    (tmp_path / "old.json").write_text(json.dumps(old), encoding="utf-8")
    report = check_jsonschema("--check-metaschema", str(tmp_path / "old.json"))
    assert [e["path"] for e in report["errors"]] == ["$['$defs'].Reading.properties.url.pattern"]


def test_every_record_is_valid_under_the_schema_in_a_peer_validator():
    papers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "papers").glob("*.yaml"))
    report = check_jsonschema("--schemafile", "kb/paper.schema.json", *papers)
    assert report["status"] == "ok", report["errors"][:5] + report["parse_errors"][:5]


#: Faults only kb validate sees: they need other records, the file system or a Python check.
SCHEMA_BLIND = {
    "course-incomplete": "sections required when curriculum is set (a cross-field rule)",
    "cycle": "a lineage cycle spans records",
    "duplicate-id": "two files, one id",
    "edge-elsewhere": "where an edge belongs depends on the file it is in",
    "et-al": "'et al.' in authors is a Python check",
    "placeholder-scaffold": "a placeholder is valid data: only --strict refuses it",
    "placeholder-text": "a placeholder is valid data: only --strict refuses it",
    "runnable-missing": "runnable/<id>.py is a file",
    "unknown-concept": "the concept is declared in another record",
    "unknown-node": "the node is another record",
}


def test_peer_validator_agrees_with_kb_validate_on_the_bad_fixtures(tmp_path):
    from .bad_cases import RECORD_CASES, materialise

    files: dict[str, list[str]] = {}
    for case in RECORD_CASES:
        project = materialise(case, tmp_path / case)
        assert main(["--root", str(project), "validate", "--strict"]) == 1, (
            case
        )  # kb rejects every one
        files[case] = sorted(str(p) for p in (project / "papers").glob("*.yaml"))
    report = check_jsonschema(
        "--schemafile",
        str(ROOT / "kb" / "paper.schema.json"),
        *[f for fs in files.values() for f in fs],
    )
    errors = report["errors"] + report["parse_errors"]
    rejected = {case for case, fs in files.items() if any(e["filename"] in fs for e in errors)}
    assert rejected == set(RECORD_CASES) - set(SCHEMA_BLIND)
    for case in sorted(rejected):  # and it points at the field kb names, or a mapping above it
        fields = re.findall(
            r" › ([^:]+):", (tmp_path / case / "expected.txt").read_text(encoding="utf-8")
        )
        paths = [e.get("path", "$") for e in errors if e["filename"] in files[case]]
        for f in fields:
            assert any(("$." + f).startswith(p) for p in paths), (case, f, paths)
