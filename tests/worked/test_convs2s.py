"""ConvS2S's worked example (papers/convs2s.yaml › teaching.worked_example): the runnable's `glu`
on a 4-dimensional vector, the shapes through one causal `ConvBlock` and its causality, how far
a stack of width-3 blocks sees (measured with autograd), and the two scalings."""

import math

import torch

from ..conftest import record, runnable, stated_in

C = runnable("convs2s")
EX = record("convs2s").teaching.worked_example
stated = stated_in("convs2s")


def vec(v) -> str:
    return "(" + ", ".join(f"{float(x):.3f}" for x in v) + ")"


def test_glu_on_a_four_dimensional_vector():
    Y = torch.tensor([2.0, -1.0, 0.0, 2.0], requires_grad=True)
    out = C.glu(Y, dim=0)
    A, B = Y.detach().chunk(2)
    out.sum().backward()
    assert torch.allclose(Y.grad[:2], torch.sigmoid(B))  # d out / d A = sigma(B)
    stated(
        "$Y = (2.0, -1.0, 0.0, 2.0)$",
        "$A = (2.0, -1.0)$",
        "$B = (0.0, 2.0)$",
        rf"\sigma(B) = {vec(torch.sigmoid(B))}",
        rf"A \otimes \sigma(B) = {vec(out.detach())}",
    )


def test_one_causal_block():
    torch.manual_seed(0)
    block = C.ConvBlock(64, 64, 3, causal=True, dropout=0.0).eval()
    x = torch.randn(1, 5, 64)
    y = block.conv(x.transpose(1, 2))
    h, res = block(x)
    fmt = lambda t: "$(" + ", ".join(map(str, t.shape)) + ")$"
    assert fmt(y) == "$(1, 128, 7)$" and fmt(h.transpose(1, 2)) == "$(1, 64, 5)$"
    stated(
        f"| {fmt(x)} |",
        f"| {fmt(y)} |",
        f"| {fmt(y[..., :5])} |",
        f"| {fmt(h.transpose(1, 2))} |",
        "$k - 1 = 2$",
    )
    x2 = x.clone()
    x2[0, 4] += 1.0
    h2, _ = block(x2)
    assert torch.equal(h2[0, :4], h[0, :4]) and not torch.equal(h2[0, 4], h[0, 4])
    assert "outputs 0 to 3" in EX.en and "第 0 到 3 個輸出" in EX.zh_hant


def receptive_field(n_blocks: int, T: int = 31) -> int:
    """How many input positions the centre output of n encoder blocks depends on."""
    torch.manual_seed(0)
    blocks = [C.ConvBlock(8, 8, 3, causal=False, dropout=0.0) for _ in range(n_blocks)]
    x = torch.randn(1, T, 8, requires_grad=True)
    h = x
    for b in blocks:
        out, res = b(h)
        h = (out + res) * math.sqrt(0.5)
    h[0, T // 2].sum().backward()
    return int((x.grad[0].abs().sum(-1) > 0).sum())


def test_how_far_a_stack_sees():
    assert receptive_field(3) == 3 * 2 + 1 == 7
    assert receptive_field(10) == 10 * 2 + 1 == 21
    stated(r"$3 \cdot 2 + 1 = 7$", "21")


def test_the_scalings():
    assert math.isclose(2 * math.sqrt(0.5) ** 2, 1.0)
    m = 16
    assert m * math.sqrt(1 / m) == math.sqrt(m) == 4
    stated(rf"$\sqrt{{0.5}} = {math.sqrt(0.5):.4f}$", r"m\sqrt{1/m} = \sqrt{m}", "$m = 16$")
