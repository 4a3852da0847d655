"""ResNet's worked example (papers/resnet.yaml › teaching.worked_example): one basic block's
shapes and weights where a CIFAR stage starts (stride 2, zero-padded identity shortcut), the
identity a block computes when its residual branch is switched off (and what the plain block
computes then), a bottleneck's weights against a two-layer 3x3 block, the parameter counts of
ResNet-56/110/50 and ResNet-50's stage shapes, all from the runnable."""

import dataclasses

import torch

from ..conftest import runnable, stated_in

R = runnable("resnet")
stated = stated_in("resnet")


def n(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def shape(t: torch.Tensor) -> str:
    c, h, w = t.shape[1:]
    return f"{c} × {h}×{w}"


@torch.no_grad()
def test_the_block_where_a_stage_starts():
    torch.manual_seed(0)
    b = R.Block(16, 32, 2, residual=True).eval()
    x = torch.randn(1, 16, 32, 32)
    h1 = b.conv1(x)
    assert (shape(x), shape(h1), shape(b.conv2(h1))) == ("16 × 32×32", "32 × 16×16", "32 × 16×16")
    sub = x[:, :, ::2, ::2]
    assert shape(sub) == "16 × 16×16" and shape(b.shortcut(x)) == "32 × 16×16"
    assert torch.equal(b.shortcut(x)[:, 16:], torch.zeros(1, 16, 16, 16))  # padded channels
    assert shape(b(x)) == "32 × 16×16"
    w1, w2 = b.conv1.weight.numel(), b.conv2.weight.numel()
    assert (w1, w2) == (3 * 3 * 16 * 32, 3 * 3 * 32 * 32) and b.proj is None
    stated(
        "16 × 32×32",
        "32 × 16×16",
        "16 × 16×16",
        f"3 × 3 × 16 × 32 = {w1:,}",
        f"3 × 3 × 32 × 32 = {w2:,}",
        f"{n(b):,}",
    )


@torch.no_grad()
def test_switching_off_the_residual_branch_leaves_the_identity():
    torch.manual_seed(0)
    x = torch.relu(torch.randn(1, 16, 8, 8))  # a block's input is a ReLU output: x >= 0
    res, plain = R.Block(16, 16, 1, residual=True).eval(), R.Block(16, 16, 1, residual=False).eval()
    for b in (res, plain):
        torch.nn.init.zeros_(b.bn2.weight)  # gamma of the last BN = 0, so F(x) = 0
    assert torch.equal(res(x), x)
    assert plain(x).abs().max().item() == 0.0
    stated(r"\gamma = 0", "= x", "= 0")
    stated(f"{n(res):,}", f"2 × (3 × 3 × 16 × 16) = {2 * 3 * 3 * 16 * 16:,}")


def test_bottleneck_against_a_two_layer_block():
    bott = R.Bottleneck(256, 64, 1, residual=True)
    y = bott(torch.zeros(1, 256, 56, 56))
    assert shape(y) == "256 × 56×56"
    convs = [bott.conv1.weight.numel(), bott.conv2.weight.numel(), bott.conv3.weight.numel()]
    assert convs == [256 * 64, 9 * 64 * 64, 64 * 256]
    basic = R.Block(64, 64, 1, residual=True)
    two_3x3 = basic.conv1.weight.numel() + basic.conv2.weight.numel()
    wide = 2 * 9 * 256 * 256
    stated(*(f"{c:,}" for c in convs), f"{sum(convs):,}", f"{two_3x3:,}", f"{wide:,}")


def test_whole_networks():
    counts = {}
    for depth, n_blocks in ((56, 9), (110, 18)):
        cfg = dataclasses.replace(R.PRESETS["paper"], n=n_blocks)
        with torch.device("meta"):
            counts[depth] = n(R.ResNet(cfg, residual=True))
    with torch.device("meta"):
        r50 = R.ResNet(R.PRESETS["paper-imagenet"], residual=True)
        x = r50.conv(torch.zeros(1, 3, 224, 224))
        sides = [shape(x)]
        x = torch.nn.functional.max_pool2d(x, 3, 2, padding=1)
        sides.append(shape(x))
        for i, blk in enumerate(r50.blocks):
            x = blk(x)
            if i in (2, 6, 12, 15):  # last block of conv2_x .. conv5_x (3, 4, 6, 3)
                sides.append(shape(x))
    counts[50] = n(r50)
    assert counts[50] == 25_557_032 and round(counts[110] / 1e6, 1) == 1.7
    assert sides == [
        "64 × 112×112",
        "64 × 56×56",
        "256 × 56×56",
        "512 × 28×28",
        "1024 × 14×14",
        "2048 × 7×7",
    ]
    stated(*(f"{c:,}" for c in counts.values()), *sides)
