"""NIN's worked example (papers/nin.yaml › teaching.worked_example): the shapes and parameters
of the runnable's `paper` preset (the CIFAR-10 network) layer by layer, a 1x1 convolution as one
linear layer applied at every position, and global average pooling turning ten 8x8 class maps
into ten scores (with the parameters a fully connected head would need, and a blob whose
average does not change when it moves)."""

import dataclasses

import torch
from torch import nn

from ..conftest import runnable, stated_in

N = runnable("nin")
CFG = N.PRESETS["paper"]
stated = stated_in("nin")


def n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def size(t: torch.Tensor) -> str:
    return f"{t.shape[1]} × {t.shape[2]}×{t.shape[3]}" if t.dim() == 4 else str(t.shape[1])


@torch.no_grad()
def test_each_layer_of_the_cifar_network():
    torch.manual_seed(0)
    net = N.NIN(CFG).eval()
    x = torch.zeros(1, 3, 32, 32)
    rows = []
    for layer in net.mlpconvs:
        x = layer(x)
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            rows.append((size(x), n(layer)))
    scores = net.head(x)
    assert [r[0] for r in rows][-1] == "10 × 8×8" and tuple(scores.shape) == (1, 10)
    assert n(net.head) == 0 and n(net) == 966_986
    for shape, params in rows:
        stated(f"| {shape} | {params:,} |")
    stated("| 10 | 0 |", f"{n(net):,}")


@torch.no_grad()
def test_a_1x1_convolution_is_a_linear_layer_at_every_position():
    torch.manual_seed(0)
    conv = nn.Conv2d(192, 160, 1)
    lin = nn.Linear(192, 160)
    lin.weight.copy_(conv.weight.view(160, 192))
    lin.bias.copy_(conv.bias)
    x = torch.randn(1, 192, 32, 32)
    per_position = lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(conv(x), per_position, atol=1e-5)
    assert n(conv) == 192 * 160 + 160 == 30_880
    stated("192 × 160 + 160 = 30,880", f"{32 * 32:,}")


@torch.no_grad()
def test_global_average_pooling_turns_ten_maps_into_ten_scores():
    gap = N.NIN(CFG).head
    fc = N.NIN(dataclasses.replace(CFG, head="fc")).head
    assert n(gap) == 0 and n(fc) == 10 * 8 * 8 * 10 + 10 == 6_410
    stated(f"10 × 8 × 8 × 10 + 10 = {n(fc):,}", f"{8 * 8}")
    maps = torch.zeros(1, 10, 4, 4)
    maps[0, 3, 0:2, 0:2] = 6.0  # a 2x2 blob of 6 in the top-left corner
    moved = torch.roll(maps, shifts=(2, 2), dims=(2, 3))
    a, b = gap(maps)[0, 3].item(), gap(moved)[0, 3].item()
    assert a == b == 24 / 16 == 1.5
    stated("24 / 16 = 1.5")
