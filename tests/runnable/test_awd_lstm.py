"""AWD-LSTM runnable: tiny gate (and below n-gram baselines), PTB parameter count, the LSTM against
nn.LSTM with every dropout off, and what each dropout drops."""

from dataclasses import replace

import torch
from torch import nn

from tests.conftest import figure, runnable

awd = runnable("awd-lstm")


def test_tiny_gate_beats_unigram_and_bigram():
    r = awd.train(awd.PRESETS["tiny"])
    assert r["passed"] and r["value"] <= awd.GATE[2], r
    assert r["value"] < 0.5 * r["bigram_perplexity"] < 0.5 * r["unigram_perplexity"], (
        r
    )  # uses two words of context


def test_paper_preset_counts_24m_ptb():
    # 10k x 400 tied embedding + decoder bias 10k + LSTMs 400->1150->1150->400 (two biases each, as in PyTorch)
    with torch.device("meta"):
        model = awd.build_model(awd.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    assert n == 4_000_000 + 10_000 + 7_139_200 + 10_589_200 + 2_483_200 == 24_221_600
    assert abs(n / figure("awd-lstm", "params-ptb") - 1) <= 0.02
    wt2 = n - 10_000 * 401 + 33_278 * 401  # WikiText-2: vocabulary 33,278
    assert abs(wt2 / figure("awd-lstm", "params-wt2") - 1) <= 0.02


def copy_to_torch(layer: "awd.WeightDropLSTM", ref: nn.LSTM, l: int = 0):  # noqa: E741 (layer l, as in the paper)
    with torch.no_grad():
        for ours, name in [
            (layer.W_ih, "weight_ih"),
            (layer.W_hh, "weight_hh"),
            (layer.b_ih, "bias_ih"),
            (layer.b_hh, "bias_hh"),
        ]:
            getattr(ref, f"{name}_l{l}").copy_(ours)


def test_lstm_layer_equals_torch_lstm_without_dropout():
    torch.manual_seed(0)
    layer, ref = awd.WeightDropLSTM(5, 7, weight_drop=0.0), nn.LSTM(5, 7, batch_first=True)
    copy_to_torch(layer, ref)
    x, h0, c0 = torch.randn(3, 9, 5), torch.randn(3, 7), torch.randn(3, 7)
    out, (h, c) = layer(x, (h0, c0))
    expected, (h_n, c_n) = ref(x, (h0[None], c0[None]))
    assert (
        max((out - expected).abs().max(), (h - h_n[0]).abs().max(), (c - c_n[0]).abs().max())
        <= 1e-5
    )


def test_whole_model_in_eval_equals_embedding_torch_lstms_and_tied_decoder():
    torch.manual_seed(0)
    cfg = replace(awd.PRESETS["tiny"], vocab=11, emb=6, hidden=10)
    model = awd.build_model(cfg).eval()
    refs = [
        nn.LSTM(6, 10, batch_first=True),
        nn.LSTM(10, 10, batch_first=True),
        nn.LSTM(10, 6, batch_first=True),
    ]
    for layer, ref in zip(model.rnns, refs):
        copy_to_torch(layer, ref)
    tokens = torch.randint(11, (2, 8))
    with torch.no_grad():
        x = model.encoder(tokens)
        for ref in refs:
            x = ref(x)[0]
        expected = x @ model.encoder.weight.T + model.decoder.bias
        assert (model(tokens)[0] - expected).abs().max() <= 1e-5
    assert model.decoder.weight is model.encoder.weight  # §4.4 weight tying


def test_weight_drop_applies_in_training_only():
    torch.manual_seed(0)
    layer = awd.WeightDropLSTM(4, 6, weight_drop=0.5)
    x = torch.randn(2, 5, 4)
    layer.train()
    a, b = layer(x)[0], layer(x)[0]
    assert not torch.allclose(a, b)  # a fresh DropConnect mask per pass
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    assert torch.equal(layer.W_hh, layer.W_hh.detach())  # the parameter itself is untouched


def test_locked_dropout_shares_one_mask_over_time():
    torch.manual_seed(0)
    y = awd.locked_dropout(torch.ones(4, 12, 8), 0.5, training=True)  # (B, T, d)
    assert torch.equal(y, y[:, :1].expand_as(y))  # same units dropped at every step
    assert set(y.unique().tolist()) <= {0.0, 2.0} and (y == 0).any()
    assert torch.equal(
        awd.locked_dropout(torch.ones(2, 3, 4), 0.5, training=False), torch.ones(2, 3, 4)
    )


def test_embedding_dropout_removes_whole_words():
    torch.manual_seed(0)
    W = awd.embedding_dropout(torch.ones(50, 6), 0.3, training=True)
    rows = W.abs().sum(1)
    assert (rows == 0).any() and (rows > 0).any()  # a row is kept (scaled) or gone
    assert torch.allclose(W[rows > 0], torch.full_like(W[rows > 0], 1 / 0.7))
