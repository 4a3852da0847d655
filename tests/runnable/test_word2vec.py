"""word2vec: analogy gate for skip-gram and CBOW, the paper preset on meta, hierarchical softmax sums to one."""
from dataclasses import replace

import torch

from runnable import word2vec as w2v
from tests.conftest import figure


def test_tiny_gate_skipgram_and_cbow():
    for arch in ("skipgram", "cbow"):
        r = w2v.train(replace(w2v.PRESETS["tiny"], arch=arch))
        assert r["passed"] and r["value"] >= w2v.GATE[2], (arch, r)


def test_paper_preset_on_meta():
    cfg = w2v.PRESETS["paper"]
    assert cfg.vocab == figure("word2vec", "vocabulary") and cfg.D == figure("word2vec", "dim-single-machine")
    assert cfg.C == figure("word2vec", "skipgram-max-distance")
    with torch.device("meta"):
        model = w2v.build_model(cfg)
    assert model.v.weight.shape == (1_000_000, 300)
    assert model.v_out.weight.shape == (999_999, 300)   # one vector per inner node of the Huffman tree
    assert sum(p.numel() for p in model.parameters()) == (2 * 1_000_000 - 1) * 300


def test_hierarchical_softmax_is_a_distribution():
    counts = [50, 30, 10, 5, 3, 1, 1]
    nodes, codes = w2v.huffman(counts)
    lengths = (codes >= 0).sum(1)
    assert lengths[0] <= lengths[-1]                     # frequent words get shorter codes
    cfg = replace(w2v.PRESETS["tiny"], loss="hs", D=8, vocab=len(counts))
    model = w2v.build_model(cfg)
    model.nodes, model.codes = nodes, codes
    torch.nn.init.normal_(model.v_out.weight)
    h = torch.randn(3, 8)
    p = torch.stack([model.log_p(h, torch.full((3,), w), None).exp() for w in range(len(counts))], 1)
    assert torch.allclose(p.sum(1), torch.ones(3), atol=1e-5)


def test_main_json_contract(capsys):
    assert w2v.main(["--preset", "tiny", "--json", "--arch=cbow"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "tokens_per_s"} <= out.keys()
    assert out["metric"] == w2v.GATE[0] and out["passed"]
