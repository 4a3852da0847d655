"""LeNet-5's worked example (papers/lenet.yaml › teaching.worked_example): the shape after each
layer of the runnable's LeNet5 for one 32x32 digit, each layer's trainable parameters and
connections (they add up to §II.A's 60,000 and 340,908), and f(1) of the scaled tanh."""

import pytest
import torch

from ..conftest import runnable, stated_in

L = runnable("lenet")
stated = stated_in("lenet")


def n(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@torch.no_grad()
def trace():
    """(name, output shape without the batch, parameters, connections) per layer."""
    net = L.LeNet5(L.Config())
    rows, x = [], torch.zeros(1, 1, 32, 32)
    for name in ("C1", "S2", "C3", "S4", "C5"):
        layer = getattr(net, name)
        x = layer(x)
        area = x.shape[2] * x.shape[3]
        # a convolution uses every weight and its bias once per output position; a subsampling
        # unit has four inputs and a bias
        conns = x[0].numel() * 5 if name.startswith("S") else area * n(layer)
        rows.append((name, tuple(x.shape[1:]), n(layer), conns))
    x = net.F6(x.flatten(1))
    rows.append(("F6", tuple(x.shape[1:]), n(net.F6), n(net.F6)))
    y = net.out(x)
    rows.append(("output", tuple(y.shape[1:]), n(net.out), 84 * y.shape[1]))
    return net, rows


NET, ROWS = trace()


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_each_layer_shape_parameters_and_connections_are_stated(row):
    name, shape, params, conns = row
    size = f"{shape[0]} × {shape[1]}×{shape[2]}" if len(shape) == 3 else str(shape[0])
    stated(f"| {size} |", f"{params:,}", f"{conns:,}")


def test_totals_are_the_papers_figures():
    params, conns = sum(r[2] for r in ROWS), sum(r[3] for r in ROWS)
    assert params == n(NET) == 60_000 and conns == 340_908
    stated(f"{params:,}", f"{conns:,}")


def test_first_convolution_fits_28_times():
    assert 32 - 5 + 1 == ROWS[0][1][1] == 28
    stated("32 − 5 + 1 = 28")


def test_c1_without_sharing_would_need_a_parameter_per_connection():
    c1 = NET.C1
    assert ROWS[0][3] == 28 * 28 * 6 * (5 * 5 + 1) == 122_304 and n(c1) == 156
    stated("122,304", "28 × 28", "6 × 26")


def test_squash_maps_one_to_one():
    f1 = L.squash(torch.tensor(1.0)).item()
    assert abs(f1 - 1.0) < 1e-3
    stated(f"{f1:.3f}")
