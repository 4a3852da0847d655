"""BibTeX: real exports import without loss or duplicates; failures are reported with their line;
``--merge`` fills what a record lacks and keeps its other bytes; export reads back losslessly."""

import json
import shutil

import pybtex.database
import pytest

import kb
from kb.bib import arxiv_id, existing_records, export, import_bib, parse, to_record
from kb.cli import main
from kb.knowledge.loader import parse_record

from .conftest import DATA, ROOT

BIB = DATA / "bib"
D2L = BIB / "d2l.bib"

#: d2l.bib keeps 11 papers twice under two keys (e.g. Vapnik.Chervonenkis.1974 and VapChe74).
D2L_OWN_DUPLICATES = {
    "vapnik1994measuring",
    "thomee2016yfcc100m",
    "Vapnik98",
    "VapChe64",
    "VapChe68",
    "VapChe71",
    "VapChe74",
    "VapChe74b",
    "VapChe81",
    "VapChe91",
    "ba2016layer",
}
#: d2l's key → the record the knowledge base already has for it.
D2L_CLASSICS = {
    "He.Zhang.Ren.ea.2016": "resnet",
    "Vaswani.Shazeer.Parmar.ea.2017": "transformer",
    "Devlin.Chang.Lee.ea.2018": "bert",
    "LeCun.Bottou.Bengio.ea.1998": "lenet",
    "Krizhevsky.Sutskever.Hinton.2012": "alexnet",
    "Hochreiter.Schmidhuber.1997": "lstm",
    "Goodfellow.Pouget-Abadie.Mirza.ea.2014": "gan",
    "Radford.Wu.Child.ea.2019": "gpt-2",
}


def run_import(capsys, root, bib, *extra):
    code = main(["--root", str(root), "bib", "import", str(bib), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------- d2l.bib, a real 488-entry file


def test_d2l_imports_every_entry_but_its_own_duplicates_in_a_dry_run(tmp_path, capsys):
    code, report = run_import(capsys, DATA / "mini", D2L, "--into", str(tmp_path), "--dry-run")
    assert code == 0 and report["errors"] == [] and report["skipped"] == []
    assert (report["entries"], report["imported"]) == (488, 477)
    assert {m["key"] for m in report["matched"]} == D2L_OWN_DUPLICATES
    assert all("duplicate_of" in m for m in report["matched"])
    assert {
        "key": "VapChe74",
        "line": 3387,
        "id": "vapnik-chervonenkis-1974",
        "by": "title",
        "duplicate_of": "Vapnik.Chervonenkis.1974",
    } in report["matched"]
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_d2l_matches_the_classics_the_knowledge_base_has_instead_of_importing_them(
    tmp_path, capsys
):
    code, report = run_import(capsys, ROOT, D2L, "--into", str(tmp_path), "--dry-run")
    assert code == 0 and report["errors"] == []
    matched = {m["key"]: m["id"] for m in report["matched"] if "duplicate_of" not in m}
    assert D2L_CLASSICS.items() <= matched.items()
    assert len(matched) == 38 and (report["entries"], report["imported"]) == (488, 439)
    assert not {"he-zhang-ren-ea-2016", "vaswani-shazeer-parmar-ea-2017"} & set(report["ids"])


def test_d2l_latex_accents_are_decoded_and_et_al_becomes_incomplete():
    entries, failed = parse(D2L.read_text(encoding="utf-8"))
    assert failed == []
    abadi = to_record(next(e for e in entries if e.key == "Abadi.Barham.Chen.ea.2016"))
    assert abadi["authors"][0] == "Martín Abadi" and abadi["authors_complete"] is False
    assert abadi["title"] == "TensorFlow: A system for large-scale machine learning"


def test_imported_d2l_stubs_validate_strictly(tmp_path):
    report = import_bib(D2L, tmp_path / "papers", existing={})
    assert len(report.imported) == 477
    base = kb.load(tmp_path, strict=True)
    assert len(base.records) == 477


# ---------------------------------------------------------------- exports as tools write them

#: fixture → (ids imported, {key: (record it matches, by)}) against this knowledge base.
EXPORTS = {
    "zotero.bib": (
        ["kingmaadammethodstochastic2017"],
        {
            "heDeepResidualLearning2016": ("resnet", "doi"),
            "hochreiterLongShortTermMemory1997": ("lstm", "doi"),
            "vaswaniAttentionAllYou2023": ("transformer", "arxiv"),  # dated 2023: v7
            "radfordLanguageModelsAre2019": ("gpt-2", "title"),
        },
    ),
    "scholar.bib": (
        ["kingma2014adam"],
        {
            "he2016deep": ("resnet", "title"),
            "lecun1998gradient": ("lenet", "title"),
            "krizhevsky2012imagenet": ("alexnet", "title"),
            "goodfellow2014generative": ("gan", "title"),
            "radford2019language": ("gpt-2", "title"),
            "ioffe2015batch": ("batchnorm", "title"),
        },
    ),
    "acl.bib": (
        ["lample-etal-2016-neural"],
        {"devlin-etal-2019-bert": ("bert", "doi"), "sennrich-etal-2016-neural": ("bpe", "doi")},
    ),
    "dblp.bib": (
        ["dblp-journals-corr-kingmaw13"],
        {
            "DBLP:conf/cvpr/HeZRS16": ("resnet", "doi"),
            "DBLP:journals/corr/VaswaniSPUJGKP17": ("transformer", "arxiv"),
        },
    ),
    "arxiv.bib": (
        ["kingma2022autoencoding"],
        {
            "vaswani2023attention": ("transformer", "arxiv"),
            "dosovitskiy2021image": ("vit", "arxiv"),
            "kingma2013vae": ("kingma2022autoencoding", "arxiv"),
        },
    ),
    "lab.bib": (
        [
            "hornik1991approximation",
            "hinton2006fast",
            "lecun2015deep",
            "vahdat2018dvae",
            "vahdat2018dvae-2",
        ],
        {"simonyan2015vgg": ("vgg", "arxiv")},
    ),
}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_real_world_export_imports_new_papers_and_matches_known_ones(name, tmp_path, capsys):
    code, report = run_import(capsys, ROOT, BIB / name, "--into", str(tmp_path))
    assert code == 0 and report["errors"] == []
    ids, matched = EXPORTS[name]
    assert report["ids"] == ids
    assert {m["key"]: (m["id"], m["by"]) for m in report["matched"]} == matched
    assert sorted(p.stem for p in tmp_path.glob("*.yaml")) == sorted(ids)
    assert len(kb.load(_project(tmp_path), strict=True).records) == len(ids)  # the stubs validate


def _project(papers_dir):
    """A project folder whose papers/ holds what was imported into ``papers_dir``."""
    project = papers_dir.parent / f"{papers_dir.name}-project"
    shutil.copytree(papers_dir, project / "papers")
    return project


def records(bib_name: str) -> dict:
    entries, failed = parse((BIB / bib_name).read_text(encoding="utf-8"))
    assert failed == []
    return {e.key: to_record(e) for e in entries}


def test_dois_written_as_urls_or_with_a_prefix_are_normalised():
    lab = records("lab.bib")
    assert (
        lab["hornik1991approximation"]["doi"] == "10.1016/0893-6080(91)90009-T"
    )  # https://doi.org/…
    assert lab["hinton2006fast"]["doi"] == "10.1162/neco.2006.18.7.1527"  # http://dx.doi.org/…
    assert lab["lecun2015deep"]["doi"] == "10.1038/nature14539"  # doi:…


@pytest.mark.parametrize(
    "fields",
    [
        {"eprint": "1706.03762", "archiveprefix": "arXiv"},  # arXiv's own export
        {"eprint": "1706.03762", "eprinttype": "arxiv"},  # BibLaTeX / Zotero
        {"eprint": "arXiv:1706.03762v5"},
        {"arxivid": "1706.03762"},  # Mendeley
        {"journal": "arXiv preprint arXiv:1706.03762"},  # Google Scholar
        {"journal": "CoRR", "volume": "abs/1706.03762"},  # DBLP
        {"url": "https://arxiv.org/abs/1706.03762v7"},
        {"url": "http://arxiv.org/pdf/1706.03762.pdf"},
        {"doi": "10.48550/arXiv.1706.03762"},  # arXiv's DataCite DOI
        {"note": "arXiv:1706.03762v1 [cs.CL]"},
    ],
)
def test_arxiv_ids_are_found_wherever_exporters_put_them(fields):
    assert arxiv_id(fields) == "1706.03762"


def test_arxiv_ids_are_not_invented():
    assert arxiv_id({"eprint": "1706.03762", "eprinttype": "hal"}) is None
    assert arxiv_id({"journal": "Neural Computation", "volume": "9", "pages": "1735--1780"}) is None
    assert arxiv_id({"url": "https://arxiv.org/abs/hep-th/9901001v2"}) == "hep-th/9901001"


def test_biblatex_date_journaltitle_and_online_from_zotero():
    z = records("zotero.bib")
    lstm, adam = z["hochreiterLongShortTermMemory1997"], z["kingmaAdamMethodStochastic2017"]
    assert (lstm["year"], lstm["venue"], lstm["title"]) == (
        1997,
        "Neural Computation",
        "Long Short-Term Memory",
    )
    assert lstm["authors"] == ["Sepp Hochreiter", "Jürgen Schmidhuber"]
    assert (adam["bibtex"]["type"], adam["year"], adam["arxiv"]) == ("online", 2017, "1412.6980")
    assert adam["bibtex"]["fields"]["date"] == "2017-01-29"  # kept: lossless


def test_string_macros_month_macros_and_concatenation_resolve():
    lab = records("lab.bib")
    assert lab["hornik1991approximation"]["venue"] == "Neural Networks"  # journal = nn
    assert lab["hinton2006fast"]["venue"] == "Neural Computation"  # NC: names ignore case
    assert (
        lab["vahdat2018dvae"]["bibtex"]["fields"]["booktitle"]
        == "Advances in Neural Information Processing Systems 31"
    )  # NIPS # " 31"
    assert lab["hornik1991approximation"]["bibtex"]["fields"]["month"] == "March"  # month = mar
    assert (
        lab["vahdat2018dvae++"]["bibtex"]["fields"]["month"] == "10--15 Jul"
    )  # braced: as written


def test_crossref_children_get_their_parents_fields_and_parents_are_skipped(tmp_path):
    dblp = records("dblp.bib")
    vae = dblp["DBLP:journals/corr/KingmaW13"]
    assert vae["year"] == 2014 and vae["venue"].startswith(
        "2nd International Conference on Learning Representations"
    )
    assert vae["bibtex"]["fields"]["editor"] == "Yoshua Bengio and Yann LeCun"
    assert "crossref" not in vae["bibtex"]["fields"] and "title" not in vae["bibtex"]["fields"]
    report = import_bib(BIB / "dblp.bib", tmp_path, existing={}, dry_run=True)
    assert [(s["key"], s["line"]) for s in report.skipped] == [
        ("DBLP:conf/cvpr/2016", 48),
        ("DBLP:conf/iclr/2014", 60),
    ]


def test_the_two_entries_that_stopped_d2l_import_now_import(tmp_path, capsys):
    """A DOI written as a URL, and two keys that make one id (vahdat2018dvae, vahdat2018dvae++)."""
    assert (
        main(
            [
                "--root",
                str(DATA / "mini"),
                "bib",
                "import",
                str(BIB / "lab.bib"),
                "--into",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "6 entries: 6 imported" in out
    assert (
        f"{BIB / 'lab.bib'}:54: vahdat2018dvae++: imported as vahdat2018dvae-2 "
        "('vahdat2018dvae' is taken by entry 'vahdat2018dvae' (line 45))"
    ) in out
    dvae2 = parse_record(
        "papers/vahdat2018dvae-2.yaml", (tmp_path / "vahdat2018dvae-2.yaml").read_bytes()
    )[0].paper
    assert dvae2.bibtex.key == "vahdat2018dvae++" and dvae2.title.startswith("DVAE++")
    hornik = parse_record(
        "papers/x.yaml", (tmp_path / "hornik1991approximation.yaml").read_bytes()
    )[0].paper
    assert hornik.doi == "10.1016/0893-6080(91)90009-T"


def test_json_report_has_the_documented_shape(tmp_path, capsys):
    code, report = run_import(
        capsys, ROOT, BIB / "scholar.bib", "--into", str(tmp_path), "--dry-run"
    )
    assert {"entries", "imported", "matched", "skipped", "errors"} <= set(report)
    assert report["matched"][0] == {"key": "he2016deep", "line": 1, "id": "resnet", "by": "title"}


def test_a_second_import_of_the_same_file_matches_everything(tmp_path):
    first = import_bib(BIB / "lab.bib", tmp_path, existing={})
    again = import_bib(BIB / "lab.bib", tmp_path, existing=existing_records(tmp_path))
    assert again.imported == [] and again.renamed == []
    assert [m["id"] for m in again.matched] == first.imported  # every entry finds its record


# ---------------------------------------------------------------- --merge


def _kb_with(tmp_path, *ids, edit=None):
    papers = tmp_path / "kb" / "papers"
    papers.mkdir(parents=True)
    for i in ids:
        shutil.copy(ROOT / "papers" / f"{i}.yaml", papers / f"{i}.yaml")
    if edit:
        edit(papers)
    return tmp_path / "kb"


def _without_added_lines(new: str, old: str) -> str:
    """The lines ``new`` keeps of ``old``: equal to ``old`` only if nothing but insertions was made."""
    import difflib

    return "".join(
        line[2:]
        for line in difflib.ndiff(old.splitlines(True), new.splitlines(True))
        if line.startswith("  ")
    )


def test_merge_fills_what_records_lack_keeps_their_bytes_and_never_overwrites(tmp_path, capsys):
    def edit(papers):  # a comment to keep, and a DOI the record does not know yet
        p = papers / "lstm.yaml"
        text = p.read_text(encoding="utf-8").replace(
            "\nyear:", "\n# checked against the paper\nyear:", 1
        )
        p.write_text(
            text.replace('doi: "10.1162/neco.1997.9.8.1735"', "doi: null  # look up"),
            encoding="utf-8",
        )

    project = _kb_with(tmp_path, "resnet", "lstm", "transformer", edit=edit)
    before = {p.name: p.read_text(encoding="utf-8") for p in (project / "papers").iterdir()}
    facts = {
        p.stem: parse_record(p.name, p.read_bytes())[0].paper
        for p in (project / "papers").iterdir()
    }
    code, report = run_import(capsys, project, BIB / "zotero.bib", "--merge")
    assert code == 0 and sorted(report["merged"]) == ["lstm", "resnet"]
    filled = {m["id"]: m["filled"] for m in report["matched"]}
    assert filled["resnet"] == [
        "bibtex.fields.eventtitle",
        "bibtex.fields.isbn",
        "bibtex.fields.langid",
        "bibtex.fields.location",
        "bibtex.fields.publisher",
    ]  # not file, urldate, date
    assert filled["lstm"] == [
        "doi",
        "bibtex.fields.issn",
        "bibtex.fields.journaltitle",
        "bibtex.fields.shortjournal",
    ]
    # An arXiv @online: not its DOI (it restates the arxiv id), not its fields (another type)
    assert filled["transformer"] == []
    for name, old in before.items():
        new = (project / "papers" / name).read_text(encoding="utf-8")
        rec, problems = parse_record(f"papers/{name}", new.encode("utf-8"), strict=True)
        assert rec is not None and problems == [], problems
        p, q = facts[rec.paper.id], rec.paper
        for f in (
            "title",
            "authors",
            "year",
            "venue",
            "arxiv",
            "url",
            "summary",
            "lineage",
            "concepts",
        ):
            assert getattr(q, f) == getattr(p, f), (name, f)  # nothing overwritten
        assert all(q.bibtex.fields[k] == v for k, v in p.bibtex.fields.items())
        old = old.replace("doi: null  # look up", 'doi: "10.1162/neco.1997.9.8.1735"  # look up')
        assert _without_added_lines(new, old) == old, name  # every other byte kept
    lstm = (project / "papers" / "lstm.yaml").read_text(encoding="utf-8")
    assert "# checked against the paper\nyear:" in lstm
    assert 'doi: "10.1162/neco.1997.9.8.1735"  # look up\n' in lstm  # filled in place, comment kept
    code, again = run_import(capsys, project, BIB / "zotero.bib", "--merge")
    assert again["merged"] == [] and all(
        m["filled"] == [] for m in again["matched"]
    )  # nothing left to fill


def test_merge_adds_a_bibtex_block_to_a_record_without_one(tmp_path, capsys):
    def strip(papers):
        p = papers / "lenet.yaml"
        text = p.read_text(encoding="utf-8")
        start = text.index("\nbibtex:\n")
        end = text.index("\ncitations:")
        p.write_text(text[:start] + text[end:], encoding="utf-8")

    project = _kb_with(tmp_path, "lenet", edit=strip)
    code, report = run_import(capsys, project, BIB / "scholar.bib", "--merge")
    assert code == 0 and report["merged"] == ["lenet"]
    lenet = parse_record(
        "papers/lenet.yaml", (project / "papers" / "lenet.yaml").read_bytes(), strict=True
    )[0].paper
    assert (lenet.bibtex.type, lenet.bibtex.key) == ("article", "lecun1998gradient")
    assert lenet.bibtex.fields["pages"] == "2278--2324"


def test_dry_run_merge_writes_nothing(tmp_path, capsys):
    project = _kb_with(tmp_path, "resnet")
    before = (project / "papers" / "resnet.yaml").read_bytes()
    code, report = run_import(capsys, project, BIB / "zotero.bib", "--merge", "--dry-run")
    assert code == 0 and report["merged"] == ["resnet"]
    assert (project / "papers" / "resnet.yaml").read_bytes() == before


# ---------------------------------------------------------------- failures


def test_import_never_overwrites_and_reports_every_failure(tmp_path):
    (tmp_path / "good2020.yaml").write_text("precious")
    report = import_bib(BIB / "broken.bib", tmp_path)
    reasons = {(e["key"], e["reason"].split(" (")[0].split(";")[0]) for e in report.errors}
    assert ("odd2019", "unknown entry type @weirdtype") in reasons
    assert ("noyear", "required field is missing") in reasons
    assert ("good2020", "duplicate key 'good2020'") in reasons
    assert ("unbalanced2018", "unbalanced braces") in reasons
    assert report.entries == 5 and report.imported == []
    assert (tmp_path / "good2020.yaml").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "good2020.yaml"
    ]  # errors: nothing written


def test_non_utf8_bib_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "x.bib").write_bytes(b"@article{k, title={caf\xe9}}")
    assert (
        main(["--root", str(DATA / "mini"), "bib", "import", str(tmp_path / "x.bib"), "--dry-run"])
        == 1
    )
    assert "x.bib: not UTF-8 (byte offset 22); convert the file to UTF-8" in capsys.readouterr().err


def test_truncated_bib_is_reported_not_dropped(tmp_path, capsys):
    (tmp_path / "x.bib").write_text("@article{x, title={A}, year={20", encoding="utf-8")
    assert (
        main(["--root", str(DATA / "mini"), "bib", "import", str(tmp_path / "x.bib"), "--dry-run"])
        == 1
    )
    err = capsys.readouterr().err
    assert "x.bib:1: entry 'x': unbalanced braces (3 '{' but 1 '}')" in err
    assert err.endswith("Aborted: 1 error in 1 entry; nothing written.\n")


def test_a_syntax_error_among_good_entries_stops_the_merge_too(tmp_path, capsys):
    project = _kb_with(tmp_path, "resnet")
    before = (project / "papers" / "resnet.yaml").read_bytes()
    bib = tmp_path / "refs.bib"
    bib.write_text(
        (BIB / "zotero.bib").read_text(encoding="utf-8") + "\n@article{bad, title = {Oops,\n",
        encoding="utf-8",
    )
    assert main(["--root", str(project), "bib", "import", str(bib), "--merge"]) == 1
    line = len((BIB / "zotero.bib").read_text(encoding="utf-8").splitlines()) + 2
    assert f"{bib}:{line}: entry 'bad': unbalanced braces" in capsys.readouterr().err
    assert (project / "papers" / "resnet.yaml").read_bytes() == before
    assert sorted(p.name for p in (project / "papers").iterdir()) == ["resnet.yaml"]


# ---------------------------------------------------------------- round trips


def test_export_reads_back_in_pybtex_and_reimports_losslessly(tmp_path):
    base = kb.load(ROOT)
    text = export(list(base.papers.values()))
    (tmp_path / "kb.bib").write_text(text, encoding="utf-8")
    peer = pybtex.database.parse_file(str(tmp_path / "kb.bib"))
    assert len(peer.entries) == len(base.records)
    report = import_bib(tmp_path / "kb.bib", tmp_path / "papers", existing={})
    assert report.matched == [] and sorted(report.imported) == sorted(base.records)
    again = kb.load(tmp_path, strict=True)
    facts = (
        "title",
        "authors",
        "authors_complete",
        "year",
        "venue",
        "arxiv",
        "doi",
        "url",
        "bibtex",
    )
    for paper_id, p in base.papers.items():
        q = again.paper(paper_id)
        for f in facts:
            assert getattr(q, f) == getattr(p, f) or (f == "bibtex" and p.bibtex is None), (
                paper_id,
                f,
            )


def test_real_exports_import_export_and_reimport_losslessly(tmp_path):
    first = tmp_path / "first" / "papers"
    for name in sorted(EXPORTS):
        report = import_bib(BIB / name, first, existing=existing_records(first))
        assert report.errors == []
    imported = kb.load(first.parent, strict=True)
    assert len(imported.records) == 20  # every paper of the six files once: the rest matched
    (tmp_path / "all.bib").write_text(export(list(imported.papers.values())), encoding="utf-8")
    second = tmp_path / "second" / "papers"
    report = import_bib(tmp_path / "all.bib", second, existing={})
    assert (
        report.errors == []
        and report.matched == []
        and sorted(report.imported) == sorted(imported.records)
    )
    again = kb.load(second.parent, strict=True)
    for paper_id, p in imported.papers.items():
        assert again.paper(paper_id) == p, paper_id


@pytest.mark.parametrize(
    "before, after",
    [
        (
            "id: a\nbibtex:\n  type: misc\n  key: a\n  fields: {}\nyear: 2000\n",
            'id: a\nbibtex:\n  type: misc\n  key: a\n  fields: {pages: "1--2"}\nyear: 2000\n',
        ),
        (
            'id: a\nbibtex:\n  type: misc\n  key: a\n  fields: {volume: "3"}  # as printed\n',
            'id: a\nbibtex:\n  type: misc\n  key: a\n  fields: {volume: "3", pages: "1--2"}  # as printed\n',
        ),
        (
            "id: a\nbibtex: {type: misc, key: a}\n",
            'id: a\nbibtex: {type: misc, key: a, fields: {pages: "1--2"}}\n',
        ),
        (
            "id: a\nbibtex:\n    type: misc\n    key: a\nyear: 2000",
            'id: a\nbibtex:\n    type: misc\n    key: a\n    fields:\n      pages: "1--2"\nyear: 2000\n',
        ),
    ],
)
def test_merge_text_adds_fields_to_any_layout_of_bibtex(before, after):
    from kb.bib import merge_text

    assert merge_text(before, {"bibtex.fields": {"pages": "1--2"}}) == after


def test_merge_text_keeps_windows_line_ends():
    from kb.bib import merge_text

    text = 'id: a\r\nbibtex:\r\n  type: misc\r\n  key: a\r\n  fields:\r\n    volume: "3"\r\n'
    assert merge_text(text, {"bibtex.fields": {"pages": "1"}, "doi": "10.1234/x"}) == (
        'id: a\r\ndoi: "10.1234/x"\r\nbibtex:\r\n  type: misc\r\n  key: a\r\n  fields:\r\n'
        '    volume: "3"\r\n    pages: "1"\r\n'
    )


def test_merge_text_puts_new_keys_in_schema_order_and_fills_nulls_in_place():
    from kb.bib import merge_text

    text = 'id: a  # ours\ntitle: "T"\nyear: 2000\nurl: null\ntags: []\n'
    adds = {
        "bibtex": {"type": "misc", "key": "k", "fields": {}},
        "doi": "10.1/x",
        "url": "https://x.org/a",
    }
    assert merge_text(text, adds) == (
        'id: a  # ours\ntitle: "T"\nyear: 2000\ndoi: "10.1/x"\n'
        'url: "https://x.org/a"\nbibtex:\n  type: "misc"\n  key: "k"\n'
        "  fields: {}\ntags: []\n"
    )


def test_merge_fills_an_entry_imported_earlier_in_the_same_file(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{a, title={Deep Things}, author={B, C}, year={2000}}\n"
        "@article{b, title={Deep {T}hings.}, author={B, C}, year={2000}, doi={doi:10.1234/x}, pages={3}}\n",
        encoding="utf-8",
    )
    report = import_bib(bib, tmp_path / "papers", existing={}, merge=True)
    assert report.matched == [
        {
            "key": "b",
            "line": 2,
            "id": "a",
            "by": "title",
            "duplicate_of": "a",
            "filled": ["doi", "bibtex.fields.pages"],
        }
    ]
    a = parse_record("papers/a.yaml", (tmp_path / "papers" / "a.yaml").read_bytes())[0].paper
    assert (a.doi, a.bibtex.fields, a.bibtex.type) == ("10.1234/x", {"pages": "3"}, "article")


def test_a_title_match_with_a_different_doi_is_another_version_not_a_duplicate(tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text(
        "@article{a, title={Long Short-Term Memory}, author={B, C}, year={1997}, doi={10.9999/other}}\n",
        encoding="utf-8",
    )
    report = import_bib(
        bib, tmp_path / "papers", existing=existing_records(ROOT / "papers"), dry_run=True
    )
    assert report.matched == [] and report.imported == ["a"]


def test_merge_into_a_record_saved_with_windows_line_ends_keeps_them(tmp_path, capsys):
    def crlf(papers):
        p = papers / "resnet.yaml"
        p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))

    project = _kb_with(tmp_path, "resnet", edit=crlf)
    before = (project / "papers" / "resnet.yaml").read_bytes()
    code, report = run_import(capsys, project, BIB / "dblp.bib", "--merge")
    assert code == 0 and report["merged"] == ["resnet"]
    after = (project / "papers" / "resnet.yaml").read_bytes()
    assert (
        after.count(b"\n") == after.count(b"\r\n") == before.count(b"\r\n") + 2
    )  # isbn, publisher
    assert b'    isbn: "978-1-4673-8851-1"\r\n' in after
