"""DenseNet's worked example (papers/densenet.yaml › teaching.worked_example): the channel
counts of DenseNet (L=40, k=12) traced by a forward pass of the runnable's paper preset on one
32 x 32 image, the connections of a block, the weights of one layer against a plain layer, and
DenseNet-BC's block widths and parameter counts. Every number must appear in both languages."""

from __future__ import annotations

from dataclasses import replace

import torch

from ..conftest import runnable, stated_in

D = runnable("densenet")
stated = stated_in("densenet")


def trace(cfg):
    """(module, channels in, channels out, spatial size) for every stage of the features."""
    net = D.DenseNet(cfg).eval()
    x, rows = torch.zeros(1, 3, 32, 32), []
    with torch.no_grad():
        for m in net.features:
            c_in, x = x.shape[1], m(x)
            rows.append((type(m).__name__, c_in, x.shape[1], x.shape[-1]))
    return net, rows


def row(cells) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def test_densenet_40_channel_counts_and_parameters():
    cfg = D.PRESETS["paper"]
    assert (cfg.depth, cfg.k) == (40, 12)
    net, rows = trace(cfg)
    layers = [r for r in rows if r[0] == "DenseLayer"]
    per_block = len(layers) // 3
    assert per_block == 12 and cfg.depth - 4 == 36
    stated("$40 - 4 = 36$", f"$36 / 3 = {per_block}$", f"$k_0 = {rows[0][2]}$")
    ((_, _, first, size),) = rows[:1]
    stated(f"| 3 | {first} | $32 \\times 32$ |")
    b1 = layers[:12]
    assert (b1[0][1], b1[0][2], b1[1][1], b1[1][2], b1[11][1], b1[11][2]) == (
        16,
        28,
        28,
        40,
        148,
        160,
    )
    stated("| 16 | 16 + 12 = 28 |", "| 28 | 40 |", "| 148 | 160 |")
    t1, t2 = [r for r in rows if r[0] == "Transition"]
    assert t1[1:] == (160, 160, 16) and t2[1:] == (304, 304, 8)
    stated(
        "| 160 | 160 | $16 \\times 16$ |",
        "| 160 | 304 | $16 \\times 16$ |",
        "| 304 | 304 | $8 \\times 8$ |",
        "| 304 | 448 | $8 \\times 8$ |",
        "| 448 | 10 |",
    )
    assert layers[-1][1:3] == (436, 448) and net.fc.in_features == 448 and net.fc.out_features == 10
    last_conv = net.features[-3].H[2]  # the last DenseLayer's 3x3 convolution
    assert last_conv.weight.numel() == 436 * 12 * 9 == 47_088
    plain = 448 * 448 * 9
    stated("436", "47,088", f"{plain:,}", f"{round(plain / 47_088)} ")
    params = sum(p.numel() for p in net.parameters())
    stated(f"{params:,}", "1.0M")
    assert round(params / 1e6, 1) == 1.0


def test_connections_of_a_block():
    assert sum(range(1, 13)) == 12 * 13 // 2 == 78
    stated("= 78$")


def test_densenet_bc_100():
    cfg = replace(D.PRESETS["gpu"], in_channels=3)
    assert (cfg.depth, cfg.k, cfg.bottleneck, cfg.theta) == (100, 12, True, 0.5)
    net, rows = trace(cfg)
    layers = [r for r in rows if r[0] == "DenseLayer"]
    assert len(layers) // 3 == (100 - 4) // 6 == 16
    assert net.features[1].H[2].out_channels == 4 * cfg.k == 48
    ends = [r[1] for r in rows if r[0] == "Transition"] + [net.fc.in_features]
    halves = [r[2] for r in rows if r[0] == "Transition"]
    assert rows[0][2] == 24 and ends == [216, 300, 342] and halves == [108, 150]
    stated(
        "$(100 - 4)/6 = 16$",
        "$4k = 48$",
        "$2k = 24$",
        "$24 + 16 \\cdot 12 = 216$",
        "108",
        "300",
        "150",
        "342",
    )
    params = sum(p.numel() for p in net.parameters())
    stated(f"{params:,}", "0.8M")
    assert round(params / 1e6, 1) == 0.8
