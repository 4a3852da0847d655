"""LSTM runnable: tiny gate on the adding problem, the hand-written cell against nn.LSTM."""
import torch
from torch import nn

from runnable import lstm as L


def test_tiny_solves_adding_problem_at_lag_50():
    cfg = L.PRESETS["tiny"]
    assert cfg.T - 10 >= 50 and not cfg.forget_gate            # the 1997 cell, minimal lag >= 50
    r = L.train(cfg)
    assert r["passed"], r


def test_plain_rnn_fails_the_same_task():
    r = L.train(L.Config(cell="rnn"))
    assert not r["passed"] and r["value"] < 0.5 and r["mse"] > 0.03, r   # 0.042 = always answering 0.5


def test_cell_with_forget_gate_equals_torch_lstm():
    torch.manual_seed(0)
    n_in, n_cell, T = 3, 5, 7
    cell, ref = L.LSTMCell(n_in, n_cell, forget_gate=True), nn.LSTM(n_in, n_cell, batch_first=True)
    with torch.no_grad():                                      # same gate order (in, forget, cell, out)
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
    assert cell.W.out_features == 3 * 4                         # input gate, cell input, output gate only
    s_prev = torch.randn(1, 4, requires_grad=True)
    _, s_c = cell(torch.randn(1, 2), (torch.randn(1, 4), s_prev))
    (grad,) = torch.autograd.grad(s_c.sum(), s_prev)
    assert torch.equal(grad, torch.ones_like(grad))
