"""word2vec: the analogy gate (hierarchical softmax judged, negative sampling must pass too,
untrained vectors fail) on seeds 0-2, the paper preset on meta, and hierarchical softmax as a
probability distribution straight from build_model."""

import json
from dataclasses import replace

import pytest
import torch

from runnable import word2vec as w2v
from tests.conftest import figure


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_gate_both_output_layers_pass_untrained_vectors_fail(seed):
    r = w2v.train(replace(w2v.PRESETS["tiny"], seed=seed))
    assert r["metric"] == w2v.GATE[0] and r["loss"] == "hs,neg" and r["seed"] == seed
    assert r["value"] == r["hs_value"] >= w2v.GATE[2] and r["neg_value"] >= w2v.GATE[2], r
    assert r["ablation"]["value"] < w2v.GATE[2] and r["conditions"] == {
        "neg passes the gate too": True
    }
    assert r["passed"] and r["history"]["idea"][-1] == r["value"]
    assert len(r["history"]["idea"]) == len(r["history"]["ablation"]) == w2v.PRESETS["tiny"].evals


def test_cbow_passes_the_gate_from_the_command_line(capsys):
    assert w2v.main(["--preset", "tiny", "--json", "--arch=cbow"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {
        "metric",
        "value",
        "ablation",
        "conditions",
        "history",
        "passed",
        "seed",
        "params",
        "seconds",
        "tokens_per_s",
    } <= out.keys()
    assert out["arch"] == "cbow" and out["passed"] and out["neg_value"] >= w2v.GATE[2]


def test_paper_preset_on_meta():
    cfg = w2v.PRESETS["paper"]
    assert cfg.vocab == figure("word2vec", "vocabulary")
    assert cfg.D == figure("word2vec", "dim-single-machine")
    assert cfg.C == figure("word2vec", "skipgram-max-distance")
    with torch.device("meta"):
        model = w2v.build_model(cfg)
    assert model.v.weight.shape == (1_000_000, 300)
    assert model.v_out.weight.shape == (999_999, 300)  # one vector per inner node of the tree
    assert sum(p.numel() for p in model.parameters()) == (2 * 1_000_000 - 1) * 300


def test_huffman_codes_are_a_complete_prefix_code_short_for_frequent_words():
    counts = [50, 30, 10, 5, 3, 1, 1]
    nodes, codes = w2v.huffman(counts)
    lengths = (codes >= 0).sum(1)
    assert lengths.tolist() == sorted(lengths.tolist())  # frequent words: short
    assert sum(2.0**-n for n in lengths.tolist()) == 1.0  # Kraft: a full binary tree
    paths = {tuple(c[c >= 0].int().tolist()) for c in codes}
    assert len(paths) == len(counts) and nodes.max() == len(counts) - 2


def test_hierarchical_softmax_from_build_model_sums_to_one_over_the_vocabulary():
    cfg = replace(w2v.PRESETS["tiny"], loss="hs")
    model = w2v.build_model(cfg)  # no train(): tree built
    V = model.v.num_embeddings
    torch.nn.init.normal_(model.v_out.weight)
    h = torch.randn(5, cfg.D)
    p = torch.stack([model.log_p(h, torch.full((5,), w), None).exp() for w in range(V)], 1)
    assert torch.allclose(p.sum(1), torch.ones(5), atol=1e-5)  # (5, V) rows sum to one
    lengths = (model.codes >= 0).sum(1)  # tree of expected counts:
    E_R = cfg.n_entities * cfg.n_roles  # (e, r) words are rarer
    assert lengths[:E_R].min() > lengths[-cfg.n_noise :].max()  # than filler words
