"""LSTM's worked example (papers/lstm.yaml › teaching.worked_example): one step of the runnable's
1997 `LSTMCell` with fixed net inputs, the error factor along the constant error carousel after
100 steps against a plain unit's 0.9 and 1.1 per step, and the shapes of one batch."""

import torch

from ..conftest import runnable, stated_in

L = runnable("lstm")
stated = stated_in("lstm")


def cell_with_nets(net_in: float, net_c: float, net_out: float):
    """A one-cell 1997 LSTMCell whose net inputs are these constants (bias only, no weights)."""
    cell = L.LSTMCell(1, 1, forget_gate=False)
    with torch.no_grad():
        cell.W.weight.zero_()
        cell.U.weight.zero_()
        cell.W.bias.copy_(torch.tensor([net_in, net_c, net_out]))
    return cell


def test_one_step_of_one_cell():
    cell = cell_with_nets(2.0, 1.0, 0.0)
    x, s_prev = torch.zeros(1, 1), torch.full((1, 1), 0.5)
    with torch.no_grad():
        y_c, s_c = cell(x, (torch.zeros(1, 1), s_prev))
    y_in, g, y_out = torch.sigmoid(torch.tensor(2.0)), torch.tanh(torch.tensor(1.0)), 0.5
    assert torch.allclose(s_c, s_prev + y_in * g)  # nothing multiplies s_c(t-1)
    assert torch.allclose(y_c, y_out * torch.tanh(s_c))
    stated(
        "$s_c(t-1) = 0.5$",
        r"$\mathrm{net}_{in} = 2$",
        r"$\mathrm{net}_c = 1$",
        r"$\mathrm{net}_{out} = 0$",
        f"| {y_in.item():.4f} |",
        f"| {g.item():.4f} |",
        f"| {(y_in * g).item():.4f} |",
        f"0.5 + {(y_in * g).item():.4f}$ | {s_c.item():.4f} |",
        r"$y^{out} = \sigma(0)$ | 0.5 |",
        rf"\tanh({s_c.item():.4f}) = 0.5 \cdot {torch.tanh(s_c).item():.4f}$ | {y_c.item():.4f} |",
    )


def test_the_carousel_keeps_the_error_for_100_steps():
    cell = cell_with_nets(2.0, 1.0, 0.0)  # U = 0: only the CEC path
    s0 = torch.full((1, 1), 0.5, requires_grad=True)
    y_c, s_c = torch.zeros(1, 1), s0
    for _ in range(100):
        y_c, s_c = cell(torch.zeros(1, 1), (y_c, s_c))
    s_c.sum().backward()
    assert s0.grad.item() == 1.0
    stated(
        "100",
        "1.0",
        f"{0.9**100 / 1e-5:.2f} \\times 10^{{-5}}",
        f"{round(1.1**100):,}".replace(",", "{,}"),
    )


def test_shapes_of_one_batch():
    cell = L.LSTMCell(2, 32, forget_gate=False)
    x, y_c, s_c = torch.zeros(64, 2), torch.zeros(64, 32), torch.zeros(64, 32)
    nets = cell.W(x) + cell.U(y_c)
    assert tuple(nets.shape) == (64, 96)
    assert tuple(L.LSTMCell(2, 32, forget_gate=True).W(x).shape) == (64, 128)
    with torch.no_grad():
        y_c, s_c = cell(x, (y_c, s_c))
    assert tuple(y_c.shape) == tuple(s_c.shape) == (64, 32)
    stated("$B = 64$", "$(64, 2)$", "$(64, 32)$", "$(64, 96)$", "$(64, 128)$")
