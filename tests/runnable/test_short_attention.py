"""Short attention spans: key-value-predict attention passes the perplexity gate and a plain LSTM
fails it (seeds 0-2), attention on the right slot, causality, the paper preset on meta."""

from dataclasses import replace

import pytest
import torch

from tests.conftest import figure, runnable

sa = runnable("short-attention")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_key_value_predict_passes_the_gate_a_plain_lstm_fails(seed):
    r = sa.train(replace(sa.PRESETS["tiny"], seed=seed))
    assert r["metric"] == sa.GATE[0] and r["seed"] == seed and r["variant"] == "kvp"
    assert r["floor_perplexity"] < r["value"] <= sa.GATE[2] < r["ablation"]["value"], r
    assert r["value"] < 1.25 * r["floor_perplexity"] and r["passed"]
    cfg = sa.PRESETS["tiny"]  # slot l holds h_{t-L+l}; h_{t-delay+1} read the token to copy
    assert max(range(cfg.L), key=r["mean_attention"].__getitem__) == cfg.L - cfg.delay + 1
    assert r["conditions"] == {"attention peaks on the token to copy": True}
    history = r["history"]
    assert len(history["idea"]) == len(history["ablation"]) == cfg.evals
    assert history["idea"][-1] == r["value"] and history["ablation"][-1] == r["ablation"]["value"]


def test_no_variant_sees_the_future():
    x = torch.randint(20, (2, 12))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % 20
    for variant in ("attention", "kv", "kvp", "ngram", "lstm"):
        model = sa.build_model(replace(sa.PRESETS["tiny"], variant=variant)).eval()
        a, b = model(x)[0], model(y)[0]
        assert torch.equal(a[:, :7], b[:, :7]) and not torch.equal(a[:, 7:], b[:, 7:]), variant


def test_memory_holds_the_last_L_outputs():
    x = torch.arange(1, 7.0).view(1, 6, 1)  # h_t = t + 1
    m = sa.memory(x, 3)[0, :, :, 0]  # (T, L)
    assert m[4].tolist() == [2.0, 3.0, 4.0] and m[0].tolist() == [0.0, 0.0, 0.0]


def test_paper_preset_on_meta():
    cfg = sa.PRESETS["paper"]
    assert cfg.L == figure("short-attention", "effective-memory")
    with torch.device("meta"):
        model = sa.build_model(cfg)
        logits, alpha = model(torch.zeros(2, cfg.seq_len, dtype=torch.long))
    assert logits.shape == (2, cfg.seq_len, cfg.vocab) and alpha.shape == (2, cfg.seq_len, cfg.L)
    assert model.lstm.hidden_size == 3 * cfg.k  # [k_t; v_t; p_t]
