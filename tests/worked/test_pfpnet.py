"""PFPNet's worked example (papers/pfpnet.yaml › teaching.worked_example): the shapes of the
runnable's tiny preset traced by a forward pass (SPP sizes, F_H / F_L widths, the MSCA
concatenation, P_n, anchors), one small object's best anchor IoU with and without the pyramid,
and the paper preset's base map on the meta device. Every number must appear in both languages."""

from __future__ import annotations

from dataclasses import replace

import torch

from ..conftest import record, runnable, stated_in

PF = runnable("pfpnet")
CFG = PF.PRESETS["tiny"]
EXAMPLE = record("pfpnet").teaching.worked_example
TEXTS = {"en": EXAMPLE.en, "zh-Hant": EXAMPLE.zh_hant}
stated = stated_in("pfpnet")


def stated_as(en: str, zh: str) -> None:
    """A phrase whose separators differ: "40, 20, 10" in English, "40、20、10" in Chinese."""
    assert en in TEXTS["en"], f"en worked example does not state {en!r}"
    assert zh in TEXTS["zh-Hant"], f"zh-Hant worked example does not state {zh!r}"


def sq(t) -> str:
    return f"${t.shape[-2]} \\times {t.shape[-1]}$"


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def test_shapes_of_the_tiny_preset():
    net = PF.PFPNet(CFG).eval()
    captured = {}
    for n, m in enumerate(net.msca):
        m.register_forward_hook(lambda mod, inp, out, n=n: captured.__setitem__(n, (inp[0], out)))
    x = torch.zeros(1, 3, CFG.image_size, CFG.image_size)
    with torch.no_grad():
        f = net.base(x)
        cls, box = net(x)
    assert CFG.image_size == 48 and CFG.N == 3 and CFG.n_classes == 3
    assert tuple(f.shape[1:]) == (48, 12, 12) and CFG.image_size // f.shape[-1] == 4
    stated("$48 \\times 48$", "$N = 3$", "$12 \\times 12 \\times 48$", "4")
    pooled = [F_max(f, n) for n in range(3)]
    stated(*(f"| {' | '.join(sq(p) for p in pooled)} |",))
    C_H, C_L = net.bottleneck[0][0].out_channels, net.reduce[0][0].out_channels
    assert (C_H, C_L) == (32, 16) and C_L == C_H // (CFG.N - 1)
    stated(f"$C_L = C_H/(N - 1) = {C_H}/{CFG.N - 1} = {C_L}$")
    stated_as(f"| {C_H} channels | {C_H} | {C_H} |", f"| {C_H} 個通道 | {C_H} | {C_H} |")
    stated_as(f"| {C_L} channels | {C_L} | {C_L} |", f"| {C_L} 個通道 | {C_L} | {C_L} |")
    for n in range(3):
        inp, out = captured[n]
        assert inp.shape[1] == C_H + 2 * C_L == 64
        assert tuple(out.shape[1:]) == (32, 12 // 2**n, 12 // 2**n)
    stated(
        "32 + 16 + 16 = 64",
        "$12 \\times 12 \\times 32$",
        "$6 \\times 6 \\times 32$",
        "$3 \\times 3 \\times 32$",
    )
    anchors = PF.make_anchors(CFG)
    assert len(anchors) == (144 + 36 + 9) * 3 == 567
    assert tuple(cls.shape[1:]) == (567, CFG.n_classes + 1) and tuple(box.shape[1:]) == (567, 4)
    stated("$(144 + 36 + 9) \\cdot 3 = 567$", "567 × 4")
    sides = [(anchors[i, 2] - anchors[i, 0]).item() for i in (0, 432, 540)]  # ratio 1 per level
    assert sides == [8, 16, 32]
    stated("| 8 px | 16 px | 32 px |")


def F_max(f, n):
    return torch.nn.functional.max_pool2d(f, 2**n) if n else f


def test_a_small_object_needs_the_fine_level():
    obj = (18.0, 18.0, 26.0, 26.0)  # 8 x 8, centred at (22, 22)
    best = max(iou(obj, a.tolist()) for a in PF.make_anchors(CFG))
    assert best == 1.0
    single = PF.make_anchors(replace(CFG, single_scale=True))
    centres = sorted({((a[0] + a[2]) / 2).item() for a in single})
    assert len(single) == 81 and centres == [8, 24, 40]
    square = iou(obj, (20.0, 20.0, 28.0, 28.0))  # the square 8-pixel anchor at (24, 24)
    assert square == 36 / (64 + 64 - 36)
    best_single = max(iou(obj, a.tolist()) for a in single)
    assert square < best_single < 0.5
    stated(
        "$(22, 22)$",
        "$(24, 24)$",
        "81",
        f"$= 36 / (64 + 64 - 36) = {square:.3f}$",
        f"{best_single:.3f}",
        "0.5",
    )
    stated_as("centres at 8, 24 and 40", "中心在 8、24、40")
    stated_as("2, 6, …, 22", "2、6、…、22")


def test_the_paper_preset_base_map():
    cfg = PF.PRESETS["paper"]
    with torch.device("meta"):
        f = PF.PFPNet(cfg).base(torch.empty(1, 3, cfg.image_size, cfg.image_size))
    assert cfg.N == 4 and tuple(f.shape[1:]) == (512, 40, 40)
    sizes = [f.shape[-1] // 2**n for n in range(cfg.N)]
    assert sizes == [40, 20, 10, 5]
    stated("$320 \\times 320$", "$N = 4$", "$40 \\times 40 \\times 512$")
    stated_as("40, 20, 10 and 5", "40、20、10、5")
