"""AlexNet's worked example (papers/alexnet.yaml › teaching.worked_example): conv1's output
size and parameters, every layer's output shape, parameters and multiply-adds in the runnable's
`paper` preset (built on the meta device), where the parameters and the compute sit, what the
two-GPU grouping saves in conv2, and tanh's gradient at 3 against ReLU's."""

import torch
from torch import nn

from ..conftest import record, runnable, stated_in

A = runnable("alexnet")
EX = record("alexnet").teaching.worked_example
stated = stated_in("alexnet")


def percent(v: float):
    assert f"{v:.0f} %" in EX.en and f"{v:.0f}%" in EX.zh_hant, f"{v:.0f} %"


def n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def trace():
    """(kind, output shape, parameters, multiply-adds) of every conv, pool and linear layer."""
    cfg = A.PRESETS["paper"]
    with torch.device("meta"):
        net = A.AlexNet(cfg).eval()
        rows, x = [], torch.zeros(1, 3, 224, 224)
        for layer in net.features:
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                rows.append(
                    ("conv", tuple(x.shape[1:]), n(layer), x[0].numel() * layer.weight[0].numel())
                )
            elif isinstance(layer, nn.MaxPool2d):
                rows.append(("pool", tuple(x.shape[1:]), 0, 0))
        x = x.flatten(1)
        for layer in net.classifier:
            x = layer(x)
            if isinstance(layer, nn.Linear):
                rows.append(("fc", (x.shape[1],), n(layer), layer.weight.numel()))
    return net, rows


NET, ROWS = trace()


def test_conv1_output_size_and_parameters():
    assert (224 + 2 * 2 - 11) // 4 + 1 == 55 == (227 - 11) // 4 + 1 == ROWS[0][1][1]
    assert ROWS[0][2] == 96 * (11 * 11 * 3 + 1) == 34_944
    stated(
        "55",
        "11 × 11 × 3 = 363",
        "96 × 364 = 34,944",
        r"\lfloor 54.25 \rfloor + 1 = 55",
        "(227 - 11)/4 + 1 = 55",
    )


def test_each_layer_row():
    for kind, shape, params, madds in ROWS:
        size = f"{shape[1]}×{shape[2]}×{shape[0]}" if len(shape) == 3 else str(shape[0])
        stated(f"| {size}")
        if kind != "pool":
            stated(f"| {params:,} | {madds:,} |")
    assert [r[1][1] for r in ROWS if r[0] == "pool"] == [27, 13, 6]
    stated("6×6×256 = 9,216", r"\lfloor (55 - 3)/2 \rfloor + 1 = 27")


def test_where_parameters_and_compute_sit():
    total = n(NET)
    fc = sum(r[2] for r in ROWS if r[0] == "fc")
    conv_madds = sum(r[3] for r in ROWS if r[0] == "conv")
    fc_madds = sum(r[3] for r in ROWS if r[0] == "fc")
    assert total == 60_965_224
    stated(f"{total:,}", f"{fc:,}")
    percent(100 * fc / total)
    percent(100 * conv_madds / (conv_madds + fc_madds))


def test_two_gpus_halve_conv2():
    grouped = ROWS[2][2]
    assert grouped == 256 * 48 * 25 + 256
    stated(f"{grouped:,}", f"{256 * 96 * 25 + 256:,}")


def test_tanh_gradient_at_three():
    x = torch.tensor(3.0, requires_grad=True)
    torch.tanh(x).backward()
    g_tanh = x.grad.item()
    x.grad = None
    torch.relu(x).backward()
    assert x.grad.item() == 1.0
    stated(f"{g_tanh:.4f}")
