"""Bad input in every entry point: ``kb build`` stops on every broken record fixture with the same
message as ``kb validate`` and writes nothing; ``kb bib import`` reports every unusable entry with
file:line, entry and field, exits 1 and writes nothing; a 10,000-entry .bib stays in bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kb.bib import import_bib
from kb.cli import main

from .bad_cases import BIB_CASES, RECORD_CASES, materialise
from .conftest import DATA


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, but kb's parse cache (``.cache/``), which is not output."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.relative_to(folder).as_posix().startswith(".cache/")
    }


@pytest.mark.parametrize("case", RECORD_CASES)
def test_build_stops_on_bad_fixture_with_validate_message_and_writes_nothing(
    case, tmp_path, capsys, monkeypatch
):
    import kb.site.build

    def must_not_run(*args, **kwargs):
        raise AssertionError("kb build went on to render or run mkdocs on a bad record")

    monkeypatch.setattr(kb.site.build, "render_all", must_not_run)
    monkeypatch.setattr(kb.site.build, "mkdocs_build", must_not_run)
    project = materialise(case, tmp_path / "project")
    out = tmp_path / "out" / "site"
    out.mkdir(parents=True)
    (out / "index.html").write_text("the previous site", encoding="utf-8")
    (out / "papers").mkdir()
    (out / "papers" / "a.html").write_bytes(b"\x00previous")
    before, project_before = snapshot(out.parent), snapshot(project)
    assert main(["--root", str(project), "build", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err == (project / "expected.txt").read_text(
        encoding="utf-8"
    )  # the same words as kb validate
    assert "Traceback" not in err
    assert snapshot(out.parent) == before  # previous site byte-identical, no .site-* staging left
    assert snapshot(project) == project_before  # no site_src/ or site/ written into the project


@pytest.mark.parametrize("case", [c for c in BIB_CASES if c != "bib-10k"])
def test_bib_import_bad_fixture_fails_with_expected_message(case, tmp_path, capsys, monkeypatch):
    folder = materialise(case, tmp_path / case)
    into = tmp_path / "papers"
    monkeypatch.chdir(folder)  # messages name the file as given on the command line
    for dry in ([], ["--dry-run"]):
        assert (
            main(
                [
                    "--root",
                    str(DATA / "mini"),
                    "bib",
                    "import",
                    "refs.bib",
                    "--into",
                    str(into),
                    *dry,
                ]
            )
            == 1
        )
        err = capsys.readouterr().err
        assert err == (folder / "expected.txt").read_text(encoding="utf-8")
        assert "Traceback" not in err
        assert not into.exists()  # all or nothing: the good entry is not written either


def test_bib_import_errors_are_in_the_json_report(tmp_path, capsys):
    folder = materialise("bib-unknown-type", tmp_path / "case")
    assert (
        main(
            [
                "--root",
                str(DATA / "mini"),
                "bib",
                "import",
                str(folder / "refs.bib"),
                "--dry-run",
                "--json",
            ]
        )
        == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert report["imported"] == 0 and report["ids"] == []
    assert [(e["key"], e["line"]) for e in report["errors"]] == [("srivastava2014dropout", 7)]


def test_bib_import_gives_an_entry_whose_id_is_taken_another_and_never_overwrites(tmp_path):
    """A file that holds no valid record still takes its id: the entry gets ``<id>-2``."""
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{a2000, title={A}, author={B, C}, year={2000}}\n"
        "@article{b2001, title={B}, author={D, E}, year={2001}}\n",
        encoding="utf-8",
    )
    (tmp_path / "papers").mkdir()
    (tmp_path / "papers" / "a2000.yaml").write_text("precious", encoding="utf-8")
    report = import_bib(bib, tmp_path / "papers")
    assert report.errors == [] and report.imported == ["a2000-2", "b2001"]
    assert report.renamed == [
        {
            "key": "a2000",
            "line": 1,
            "id": "a2000-2",
            "reason": "'a2000' is taken by papers/a2000.yaml",
        }
    ]
    assert (tmp_path / "papers" / "a2000.yaml").read_text(encoding="utf-8") == "precious"


def test_bib_import_reports_every_field_problem_and_no_error_for_two_keys_making_one_id(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{x, title={}, author={}, year={199}}\n"
        "@article{Same-Key, title={A}, author={B, C}, year={2000}}\n"
        "@article{same_key, title={Another}, author={B, C}, year={2000}}\n",
        encoding="utf-8",
    )
    report = import_bib(bib, tmp_path / "papers", existing={})
    found = {(e["key"], e["field"]) for e in report.errors}
    assert {("x", "title"), ("x", "author")} <= found and {e["key"] for e in report.errors} == {"x"}
    assert all(e["line"] == 1 and e["reason"] for e in report.errors)
    assert report.imported == [] and not (tmp_path / "papers").exists()


IMPORT_TIMEOUT_S = 900  # a hang guard only: about 30 s here, far slower on a busy machine


def _run_import(
    tmp_path: Path, bib: Path, into: Path, *extra: str
) -> tuple[subprocess.CompletedProcess, float, int]:
    """``kb bib import`` in its own process: (result, seconds, peak resident memory in MiB)."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.returncode, time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); "
        "sys.stderr.write(r.stderr)"
    )
    cmd = [
        sys.executable,
        "-c",
        probe,
        sys.executable,
        "-m",
        "kb",
        "--root",
        str(DATA / "mini"),
        "bib",
        "import",
        str(bib),
        "--into",
        str(into),
        *extra,
    ]
    run = subprocess.run(
        cmd, capture_output=True, text=True, cwd=bib.parent, timeout=IMPORT_TIMEOUT_S
    )
    rc, seconds, mib = run.stdout.split()
    return subprocess.CompletedProcess(cmd, int(rc), "", run.stderr), float(seconds), int(mib)


def test_bib_10k_entries_import_in_bounded_time_and_memory(tmp_path):
    folder = materialise("bib-10k", tmp_path / "case")
    into = tmp_path / "papers"
    run, seconds, mib = _run_import(tmp_path, folder / "refs.bib", into)
    assert run.returncode == 0, run.stderr
    assert len(list(into.glob("*.yaml"))) == 10_000
    # Memory is the behaviour under test (about 250 MiB here); its time is printed by benchmarks,
    # never judged here: a busy machine must not turn a slow run into a failure.
    assert mib < 1024, (seconds, mib)


def test_bib_10k_with_one_duplicate_fails_at_its_line_and_writes_nothing(tmp_path):
    folder = materialise("bib-10k", tmp_path / "case", broken=True)
    into = tmp_path / "papers"
    run, seconds, mib = _run_import(tmp_path, folder / "refs.bib", into)
    assert run.returncode == 1
    assert run.stderr == (folder / "expected.txt").read_text(encoding="utf-8").replace(
        "refs.bib:", f"{folder / 'refs.bib'}:"
    )
    assert not into.exists() and mib < 1024
