"""Runnables are described by reading their source (ast), never by importing them."""

from kb.runnables import describe, discover

from .conftest import ROOT


def test_describe_reads_gate_presets_and_arxiv_without_executing(tmp_path):
    f = tmp_path / "toy.py"
    f.write_text(
        '"""Toy.\n\nPaper: T (A et al., 2017) https://arxiv.org/abs/1706.03762\n"""\n'
        'raise SystemExit("must not run")\nGATE = ("accuracy", ">=", 0.9)\n'
        'PRESETS = {"tiny": None, "paper": None, "gpu": None}\n'
    )
    info = describe(f)
    assert (info.gate, info.presets, info.arxiv) == (
        ("accuracy", ">=", 0.9),
        ["tiny", "paper", "gpu"],
        "1706.03762",
    )


def test_every_runnable_follows_the_contract():
    for paper_id, info in discover(ROOT).items():
        assert info.gate and info.gate[1] in (">=", "<="), paper_id
        assert {"tiny", "paper", "gpu"} <= set(info.presets), paper_id
        assert "Paper:" in info.doc and "Run:" in info.doc, paper_id
