"""Records and runnables agree: every record's runnable exists and every runnable has a record,
arXiv ids and gates match, the `paper` preset has the stated parameter count (±2 %), and each
file stays short and imports only the standard library, torch and (for shipped data) scikit-learn."""

import ast
import sys

import pytest
import torch

from kb.runnables import discover

from ..conftest import ROOT, runnable

BASE = __import__("kb").load(ROOT)
FILES = discover(ROOT)
WITH_RUNNABLE = sorted(pid for pid, p in BASE.papers.items() if p.runnable)
# "runnable": the shared helpers (runnable/_*.py) that are not any paper's contribution.
ALLOWED = set(sys.stdlib_module_names) | {"torch", "sklearn", "runnable"}


def test_every_record_runnable_has_its_file_and_every_file_its_record():
    named = {BASE.papers[pid].runnable.id for pid in WITH_RUNNABLE}
    assert named == set(FILES), (
        f"records without files: {named - set(FILES)}; files without records: {set(FILES) - named}"
    )
    assert all(BASE.papers[pid].runnable.id == pid for pid in WITH_RUNNABLE)


@pytest.mark.parametrize("paper_id", WITH_RUNNABLE)
def test_docstring_arxiv_and_gate_match_the_record(paper_id):
    paper, info = BASE.papers[paper_id], FILES[paper_id]
    assert info.arxiv == paper.arxiv, (
        f"docstring says arXiv {info.arxiv}, record says {paper.arxiv}"
    )
    g = paper.runnable.gate
    assert info.gate == (g.metric, g.op, g.value)
    assert str(paper.year) in info.doc.split("Paper:", 1)[1].splitlines()[0]


@pytest.mark.parametrize("paper_id", WITH_RUNNABLE)
def test_file_is_short_and_imports_only_what_it_may(paper_id):
    source = (ROOT / "runnable" / f"{paper_id}.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 340, (
        "a runnable is read next to the paper: keep it ≲ 300 lines"
    )
    for node in ast.walk(ast.parse(source)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
        for name in names:
            assert name.split(".")[0] in ALLOWED, f"{paper_id} imports {name}"


@pytest.mark.parametrize(
    "paper_id", [p for p in WITH_RUNNABLE if BASE.papers[p].runnable.params_figure]
)
def test_paper_preset_has_the_stated_parameter_count(paper_id):
    paper = BASE.papers[paper_id]
    stated = next(f.value for f in paper.figures if f.id == paper.runnable.params_figure)
    mod = runnable(paper_id)
    with torch.device("meta"):
        model = mod.build_model(mod.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    assert abs(n / stated - 1) <= 0.02, f"{paper_id}: {n:,} counted, {stated:,.0f} stated"
