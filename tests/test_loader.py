"""Every broken fixture in tests/data/bad/ fails with exactly its expected message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb.cli import main
from kb.knowledge.loader import parse_record

from .bad_cases import RECORD_CASES, materialise
from .conftest import DATA


@pytest.mark.parametrize("case", RECORD_CASES)
def test_bad_fixture_fails_with_expected_message(case, capsys, tmp_path):
    folder = materialise(case, tmp_path / case)
    assert main(["--root", str(folder), "validate", "--strict"]) == 1
    err = capsys.readouterr().err
    assert err == (folder / "expected.txt").read_text(encoding="utf-8")


def test_unknown_key_is_a_warning_without_strict(capsys):
    assert main(["--root", str(DATA / "bad" / "unknown-key"), "validate"]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: Paper(id='bert') › author: unknown key 'author' (did you mean 'authors'?)" in err
    )


def test_errors_are_collected_across_records_and_sorted(tmp_path, capsys):
    for case in ("unknown-node", "duplicate-key"):
        for f in (DATA / "bad" / case / "papers").iterdir():
            (tmp_path / "papers").mkdir(exist_ok=True)
            shutil.copy(f, tmp_path / "papers" / (f.name if case == "unknown-node" else "zz.yaml"))
    assert main(["--root", str(tmp_path), "validate"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("papers/bert.yaml:16:5:") and lines[1].startswith(
        "papers/zz.yaml:5:1:"
    )
    assert lines[-1] == "Aborted: 2 errors in 2 records."


def test_very_large_file_is_refused_quickly():
    _, problems = parse_record("papers/big.yaml", b"id: big\ntitle: " + b"x" * 2_000_000 + b"\n")
    assert [p.message for p in problems] == [
        "file is 2,000,016 bytes; a record must be under 1,000,000"
    ]


def test_bom_and_crlf_are_accepted():
    rec, problems = parse_record(
        "papers/a.yaml", "\ufeffid: a\r\ntitle: A\r\nauthors: [B]\r\nyear: 2000\r\n".encode()
    )
    assert problems == [] and rec.paper.title == "A"


def test_missing_papers_folder_is_reported(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "validate"]) == 1
    assert "no papers/ folder" in capsys.readouterr().err


def test_yml_extension_is_reported(tmp_path, capsys):
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "a.yml").write_text("id: a\n")
    assert main(["--root", str(tmp_path), "validate"]) == 1
    assert (
        "papers/a.yml:1:1: Paper(id='a'): records end in .yaml; rename it"
        in capsys.readouterr().err
    )


def test_load_pauses_the_garbage_collector_and_gives_it_back(tmp_path):
    import gc
    import shutil

    import kb

    project = Path(shutil.copytree(Path(__file__).parent / "data" / "mini", tmp_path / "p"))
    assert gc.isenabled()
    kb.load(project)
    assert gc.isenabled()
    gc.disable()
    try:
        kb.load(project)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
    (project / "papers" / "broken.yaml").write_text("id: [\n", encoding="utf-8")
    with pytest.raises(kb.ValidationFailed):
        kb.load(project)
    assert gc.isenabled()


@pytest.mark.parametrize("case", ["placeholder-scaffold", "placeholder-text"])
def test_placeholders_are_warnings_without_strict(case, capsys):
    """The same findings as under --strict (expected.txt), tagged as warnings, and exit 0."""
    assert main(["--root", str(DATA / "bad" / case), "validate"]) == 0
    out, err = capsys.readouterr()
    expected = (DATA / "bad" / case / "expected.txt").read_text(encoding="utf-8").splitlines()[:-1]
    assert err.splitlines() == [
        line.replace(": Paper(id=", ": warning: Paper(id=", 1) for line in expected
    ]
    assert out.endswith(f", {len(expected)} warnings\n")
