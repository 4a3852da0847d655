"""LSTM runnable: tiny gate on the adding problem, the hand-written cell against nn.LSTM."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from runnable import lstm as L


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_lstm_solves_the_adding_problem_and_a_plain_rnn_does_not(seed):
    r = L.train(replace(L.PRESETS["tiny"], seed=seed))
    gate = lambda v: v >= L.GATE[2]
    assert gate(r["value"]) and not gate(r["ablation"]["value"]) and r["passed"], r
    assert r["ablation"]["name"] == "plain tanh RNN" and r["seed"] == seed
    assert r["ablation"]["mse"] > 0.03 > r["mse"], r  # 0.042 = always answering 0.5
    assert r["history"]["idea"][-1] == r["value"]


def test_tiny_data_has_a_minimal_lag_of_31_steps():
    """The docstring's claim: the answer (step T - 1) comes >= T/2 + 1 = 31 steps after both marks."""
    cfg = L.PRESETS["tiny"]
    x, _ = L.make_data(cfg, 20000, torch.Generator().manual_seed(0))
    marks = x[:, 1:-1, 1] == 1.0  # (n, T - 2): steps 1 .. T - 2
    assert (marks.sum(1) == 2).all() and not cfg.forget_gate
    last = (marks * torch.arange(1, cfg.T - 1)).amax(1)  # the later mark's step
    lag = cfg.T - 1 - last
    assert lag.min().item() == 31 == cfg.T // 2 + 1 and (marks[:, :9].sum(1) >= 1).all()


def test_cell_with_forget_gate_equals_torch_lstm():
    torch.manual_seed(0)
    n_in, n_cell, T = 3, 5, 7
    cell, ref = L.LSTMCell(n_in, n_cell, forget_gate=True), nn.LSTM(n_in, n_cell, batch_first=True)
    with torch.no_grad():  # same gate order (in, forget, cell, out)
        ref.weight_ih_l0.copy_(cell.W.weight), ref.weight_hh_l0.copy_(cell.U.weight)
        ref.bias_ih_l0.copy_(cell.W.bias), ref.bias_hh_l0.zero_()
    x = torch.randn(2, T, n_in)
    y_c = s_c = torch.zeros(2, n_cell)
    outs = []
    for t in range(T):
        y_c, s_c = cell(x[:, t], (y_c, s_c))
        outs.append(y_c)
    expected, (h_n, c_n) = ref(x)
    assert (torch.stack(outs, 1) - expected).abs().max() <= 1e-5
    assert (s_c - c_n[0]).abs().max() <= 1e-5


def test_1997_cell_has_a_constant_error_carousel():
    """Without a forget gate, ds_c(t)/ds_c(t-1) = 1 exactly: the error does not decay along the cell state."""
    torch.manual_seed(0)
    cell = L.LSTMCell(2, 4, forget_gate=False)
    assert cell.W.out_features == 3 * 4  # input gate, cell input, output gate only
    s_prev = torch.randn(1, 4, requires_grad=True)
    _, s_c = cell(torch.randn(1, 2), (torch.randn(1, 4), s_prev))
    (grad,) = torch.autograd.grad(s_c.sum(), s_prev)
    assert torch.equal(grad, torch.ones_like(grad))
