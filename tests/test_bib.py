"""BibTeX: d2l.bib imports whole; failures are reported; export reads back losslessly."""
import json

import pybtex.database
import pytest

import kb
from kb.bib import export, import_bib, parse, to_record
from kb.cli import main

from .conftest import DATA, ROOT

D2L = DATA / "bib" / "d2l.bib"


def test_d2l_imports_488_of_488_in_a_dry_run(tmp_path, capsys):
    assert main(["--root", str(DATA / "mini"), "bib", "import", str(D2L), "--into", str(tmp_path),
                 "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["entries"], report["imported"], report["skipped"]) == (488, 488, [])
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_d2l_latex_accents_are_decoded_and_et_al_becomes_incomplete():
    entries, failed = parse(D2L.read_text(encoding="utf-8"))
    assert failed == []
    abadi = to_record(next(e for e in entries if e.key == "Abadi.Barham.Chen.ea.2016"))
    assert abadi["authors"][0] == "Martín Abadi" and abadi["authors_complete"] is False
    assert abadi["title"] == "TensorFlow: A system for large-scale machine learning"


def test_imported_d2l_stubs_validate_strictly(tmp_path):
    report = import_bib(D2L, tmp_path / "papers", existing=set())
    assert len(report.imported) == 488
    base = kb.load(tmp_path, strict=True)
    assert len(base.records) == 488


def test_import_never_overwrites_and_reports_every_failure(tmp_path):
    (tmp_path / "good2020.yaml").write_text("precious")
    report = import_bib(DATA / "bib" / "broken.bib", tmp_path, existing={"good2020"})
    reasons = {(e["key"], e["reason"].split(" (")[0].split(";")[0]) for e in report.errors}
    assert ("odd2019", "unknown entry type @weirdtype") in reasons
    assert ("noyear", "required field is missing") in reasons
    assert ("good2020", "duplicate key 'good2020'") in reasons
    assert ("unbalanced2018", "unbalanced braces") in reasons
    assert [s["key"] for s in report.skipped] == ["good2020"]  # exists: skipped, not an error
    assert report.entries == 5 and report.imported == []
    assert (tmp_path / "good2020.yaml").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good2020.yaml"]  # errors: nothing written


def test_export_reads_back_in_pybtex_and_reimports_losslessly(tmp_path):
    base = kb.load(ROOT)
    text = export(list(base.papers.values()))
    (tmp_path / "kb.bib").write_text(text, encoding="utf-8")
    peer = pybtex.database.parse_file(str(tmp_path / "kb.bib"))
    assert len(peer.entries) == len(base.records)
    report = import_bib(tmp_path / "kb.bib", tmp_path / "papers", existing=set())
    assert report.skipped == [] and sorted(report.imported) == sorted(base.records)
    again = kb.load(tmp_path, strict=True)
    facts = ("title", "authors", "authors_complete", "year", "venue", "arxiv", "doi", "url", "bibtex")
    for paper_id, p in base.papers.items():
        q = again.paper(paper_id)
        for f in facts:
            assert getattr(q, f) == getattr(p, f) or (f == "bibtex" and p.bibtex is None), (paper_id, f)


def test_non_utf8_bib_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "x.bib").write_bytes(b"@article{k, title={caf\xe9}}")
    assert main(["--root", str(DATA / "mini"), "bib", "import", str(tmp_path / "x.bib"), "--dry-run"]) == 1
    assert "x.bib: not UTF-8 (byte offset 22); convert the file to UTF-8" in capsys.readouterr().err


def test_truncated_bib_is_reported_not_dropped(tmp_path, capsys):
    (tmp_path / "x.bib").write_text("@article{x, title={A}, year={20", encoding="utf-8")
    assert main(["--root", str(DATA / "mini"), "bib", "import", str(tmp_path / "x.bib"), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "x.bib:1: entry 'x': unbalanced braces (3 '{' but 1 '}')" in err
    assert err.endswith("Aborted: 1 error in 1 entry; nothing written.\n")
