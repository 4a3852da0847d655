"""Short attention spans: perplexity gate, attention on the right slot, causality, the paper preset on meta."""
import importlib.util
import sys
from dataclasses import replace

import torch

from tests.conftest import ROOT, figure

_spec = importlib.util.spec_from_file_location("short_attention", ROOT / "runnable" / "short-attention.py")
sa = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)  # dataclasses look the module up
_spec.loader.exec_module(sa)


def test_tiny_gate_key_value_predict():
    r = sa.train(sa.PRESETS["tiny"])
    assert r["passed"] and r["value"] <= sa.GATE[2] < r["unigram_perplexity"] / 4, r
    assert r["value"] < 1.15 * r["floor_perplexity"] and r["tokens_per_s"] > 0
    cfg = sa.PRESETS["tiny"]                 # slot l holds h_{t-L+l}; h_{t-delay+1} has read the token to copy
    assert max(range(cfg.L), key=r["mean_attention"].__getitem__) == cfg.L - cfg.delay + 1


def test_no_variant_sees_the_future():
    x = torch.randint(20, (2, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % 20
    for variant in ("attention", "kv", "kvp", "ngram"):
        model = sa.build_model(replace(sa.PRESETS["tiny"], variant=variant)).eval()
        a, b = model(x)[0], model(y)[0]
        assert torch.equal(a[:, :7], b[:, :7]) and not torch.equal(a[:, 7:], b[:, 7:]), variant


def test_memory_holds_the_last_L_outputs():
    x = torch.arange(1, 7.0).view(1, 6, 1)                   # h_t = t + 1
    m = sa.memory(x, 3)[0, :, :, 0]                          # (T, L)
    assert m[4].tolist() == [2.0, 3.0, 4.0] and m[0].tolist() == [0.0, 0.0, 0.0]


def test_paper_preset_on_meta():
    cfg = sa.PRESETS["paper"]
    assert cfg.L == figure("short-attention", "effective-memory")
    with torch.device("meta"):
        model = sa.build_model(cfg)
        logits, alpha = model(torch.zeros(2, cfg.seq_len, dtype=torch.long))
    assert logits.shape == (2, cfg.seq_len, cfg.vocab) and alpha.shape == (2, cfg.seq_len, cfg.L)
    assert model.lstm.hidden_size == 3 * cfg.k                 # [k_t; v_t; p_t]
