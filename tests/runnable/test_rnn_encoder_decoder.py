"""RNN Encoder-Decoder runnable: tiny gate, the paper preset's shapes on meta, the GRU against torch's nn.GRU."""

from dataclasses import replace

import torch
from torch import nn

from tests.conftest import runnable

red = runnable("rnn-encoder-decoder")


def test_tiny_reverses_held_out_sequences():
    result = red.train(red.PRESETS["tiny"])
    assert result["passed"], result
    assert result["value"] >= red.GATE[2] and result["tokens_per_s"] > 0


def test_paper_preset_on_meta():
    # The paper gives sizes, not a total: 1000 GRU units, rank-100 embeddings, 500 maxout units,
    # 15000-word vocabularies (§4.1, App. A). The total follows from those sizes.
    cfg = red.PRESETS["paper"]
    with torch.device("meta"):
        model = red.build_model(cfg)
    H, e, V, m, k = 1000, 100, 15000, 500, 100
    gru = lambda n_in: n_in * 3 * H + 3 * H + H * 3 * H
    expected = (
        2 * V * e
        + gru(e)
        + 2 * (H * H + H)
        + gru(e + H)
        + (H * 2 * m + 2 * m)
        + e * 2 * m
        + H * 2 * m
        + m * k
        + k * V
        + V
    )
    assert sum(p.numel() for p in model.parameters()) == expected == 18_274_000


def run_torch_gru(cell: red.GRUCell, xs, h0):
    """nn.GRU with our cell's weights: same [r; z; candidate] row order as torch's (r, z, n)."""
    gru = nn.GRU(xs.size(-1), cell.H, batch_first=True)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(cell.W.weight), gru.bias_ih_l0.copy_(cell.W.bias)
        gru.weight_hh_l0.copy_(cell.U.weight)
        gru.bias_hh_l0.copy_(cell.U.bias if cell.U.bias is not None else torch.zeros(3 * cell.H))
    return gru(xs, h0[None])[0]  # (B, T, H)


def run_ours(cell, xs, h):
    out = []
    for t in range(xs.size(1)):
        h = cell(xs[:, t], h)
        out.append(h)
    return torch.stack(out, 1)


def test_gru_reset_after_equals_torch_gru_over_a_sequence():
    torch.manual_seed(0)
    cell = red.GRUCell(7, 16, reset_after=True)
    xs, h0 = torch.randn(3, 9, 7), torch.randn(3, 16)
    assert (run_ours(cell, xs, h0) - run_torch_gru(cell, xs, h0)).abs().max() <= 1e-5
    ref = nn.GRUCell(7, 16)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.W.weight), ref.bias_ih.copy_(cell.W.bias)
        ref.weight_hh.copy_(cell.U.weight), ref.bias_hh.copy_(cell.U.bias)
    assert (cell(xs[:, 0], h0) - ref(xs[:, 0], h0)).abs().max() <= 1e-5


def test_eq8_gru_equals_torch_when_the_candidate_recurrence_is_diagonal():
    # Eq. 8 applies r before U: U (r * h); torch applies it after: r * (U h). With a diagonal U
    # (and no recurrent bias) the two agree, so torch checks the paper's form too.
    torch.manual_seed(0)
    cell = red.GRUCell(5, 12, reset_after=False)
    with torch.no_grad():
        cell.U.weight[24:] = torch.diag(torch.randn(12))
    xs, h0 = torch.randn(4, 8, 5), torch.randn(4, 12)
    assert (run_ours(cell, xs, h0) - run_torch_gru(cell, xs, h0)).abs().max() <= 1e-5
    with torch.no_grad():
        cell.U.weight[24:] = torch.randn(12, 12)  # a full U: the two forms differ
    assert (run_ours(cell, xs, h0) - run_torch_gru(cell, xs, h0)).abs().max() > 1e-3


def test_update_gate_one_keeps_the_state():
    cell = red.GRUCell(3, 4)
    with torch.no_grad():
        cell.W.bias[4:8] = 50.0  # z -> 1: h_t = h_{t-1} (Eq. 7)
    h = torch.randn(2, 4)
    assert torch.allclose(cell(torch.randn(2, 3), h), h, atol=1e-6)


def test_decoder_reads_the_context_at_every_step():
    torch.manual_seed(0)
    model = red.build_model(
        replace(red.PRESETS["tiny"], hidden=16, emb=8, maxout=8, out_rank=8)
    ).eval()
    x = torch.randint(2, 12, (2, 5))
    y_in = torch.zeros(2, 4, dtype=torch.long)
    c = model.encode(x)
    h = torch.tanh(model.V_dec(c))
    out, h = model.step(y_in[:, 0], h, c)
    out2, _ = model.step(y_in[:, 1], h, c)
    out2_other, _ = model.step(y_in[:, 1], h, torch.zeros_like(c))  # same state, other c
    assert (out2 - out2_other).abs().max() > 1e-4
