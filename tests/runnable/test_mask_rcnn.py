"""Mask R-CNN runnable: with RoIAlign the mask IoU gate passes on anchor-grid proposals (never the
ground truth), above the box-fill baseline and with the box accuracy floor, where RoIPool fails it
(seeds 0-2); RoIAlign against direct bilinear sampling; paper head shapes on the meta device."""

import json
import math
from dataclasses import replace

import pytest
import torch

from runnable._boxes import roi_pool
from tests.conftest import runnable

mask_rcnn = runnable("mask-rcnn")


def bilinear(f, y, x):
    """Value of feature map f (C, H, W) at continuous (y, x), pixel centres at i + 0.5, edges clamped."""
    H, W = f.shape[-2:]
    y, x = min(max(y - 0.5, 0.0), H - 1), min(max(x - 0.5, 0.0), W - 1)
    y0, x0 = math.floor(y), math.floor(x)
    y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * f[:, y0, x0]
        + (1 - ly) * lx * f[:, y0, x1]
        + ly * (1 - lx) * f[:, y1, x0]
        + ly * lx * f[:, y1, x1]
    )


def roi_align_direct(features, roi, P, scale, s):
    """RoIAlign as sec. 3 describes it: P x P bins, s x s regular points per bin, each bilinear, averaged."""
    b, x1, y1, x2, y2 = [v for v in roi.tolist()]
    x1, y1, x2, y2 = x1 * scale, y1 * scale, x2 * scale, y2 * scale
    bin_w, bin_h = (x2 - x1) / P, (y2 - y1) / P
    out = torch.zeros(features.shape[1], P, P, dtype=torch.float64)
    for i in range(P):
        for j in range(P):
            for iy in range(s):
                for ix in range(s):
                    y = y1 + (i + (iy + 0.5) / s) * bin_h
                    x = x1 + (j + (ix + 0.5) / s) * bin_w
                    out[:, i, j] += bilinear(features[int(b)].double(), y, x) / s**2
    return out


def test_roi_align_equals_direct_per_point_bilinear_computation():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 12, 16, generator=g)
    rois = torch.tensor(
        [
            [0, 3.3, 5.1, 20.7, 17.9],
            [1, 0.0, 0.0, 32.0, 24.0],
            [1, 10.25, 2.6, 13.1, 9.9],
            [0, 0.4, 20.2, 6.0, 23.8],
        ]
    )
    ours = mask_rcnn.roi_align(features, rois, 7, 0.5, 2)
    for r in range(len(rois)):
        assert (
            ours[r].double() - roi_align_direct(features, rois[r], 7, 0.5, 2)
        ).abs().max() <= 1e-5


def test_roi_align_is_exact_on_a_linear_ramp_where_quantized_roi_pool_is_not():
    W = 16
    ramp = (
        torch.arange(W, dtype=torch.float32).add(0.5).expand(1, 1, W, W).contiguous()
    )  # f(x, y) = x
    rois = torch.tensor([[0, 2.3, 2.3, 9.7, 9.7]])
    P = 4
    centres = (
        2.3 + (torch.arange(P) + 0.5) * (9.7 - 2.3) / P
    )  # bin centres: the exact mean of a ramp
    ours = mask_rcnn.roi_align(ramp, rois, P, 1.0, 2)[0, 0]
    assert (ours - centres).abs().max() <= 1e-5
    pooled = roi_pool(ramp, rois, P, 1.0)[0, 0]
    assert (pooled - centres).abs().max() > 0.3  # quantization misaligns RoI and features


def test_mask_targets_and_pasting_round_trip_an_axis_aligned_box():
    size = 20
    mask = torch.zeros(1, 1, size, size)
    mask[..., 4:12, 6:16] = 1  # box (6, 4, 16, 12)
    box = torch.tensor([[6.0, 4.0, 16.0, 12.0]])
    target = mask_rcnn.roi_align(mask, torch.cat([torch.zeros(1, 1), box], 1), 28, 1.0)
    assert (
        target[..., 2:-2, 2:-2].min() == 1 and target.min() > 0.4
    )  # edge samples blend with outside pixels
    pasted = mask_rcnn.paste_masks(target[:, 0], box, size)
    assert torch.equal(pasted >= 0.5, mask[:, 0] > 0)


def test_paper_preset_builds_fpn_heads_81_classes_and_80_masks_of_28x28():
    cfg = mask_rcnn.PRESETS["paper"]
    with torch.device("meta"):
        model = mask_rcnn.build_model(cfg)
        images = torch.empty(1, 3, 800, 800)
        rois = torch.empty(5, 5)
        cls, box, masks = model(images, rois)
    assert cls.shape == (5, 81) and box.shape == (5, 81, 4) and masks.shape == (5, 80, 28, 28)
    assert [m.out_features for m in model.box_head if isinstance(m, torch.nn.Linear)] == [
        1024,
        1024,
    ]
    assert (
        sum(isinstance(m, torch.nn.Conv2d) for m in model.mask_head) == 5
    )  # 4 x 3x3 conv + 1x1 predictor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roialign_passes_the_mask_iou_gate_and_roipool_fails_it(seed):
    result = mask_rcnn.train(replace(mask_rcnn.PRESETS["tiny"], seed=seed))
    assert result["metric"] == mask_rcnn.GATE[0] == "mask-iou" and result["seed"] == seed
    assert result["value"] >= mask_rcnn.GATE[2], result
    assert not result["ablation"]["value"] >= mask_rcnn.GATE[2], result
    assert result["box_accuracy"] >= mask_rcnn.ACCURACY_MIN, result
    assert result["value"] > max(result["box_fill"], result["box_fill_gt"]), result  # > box fill
    assert result["conditions"] == {"box_accuracy": True, "beats_box_fill": True}
    assert result["passed"]
    assert len(result["history"]["idea"]) == len(result["history"]["ablation"]) >= 2


def test_proposals_come_from_a_fixed_anchor_grid_not_from_the_ground_truth():
    cfg = replace(mask_rcnn.PRESETS["tiny"], image_size=48)
    _, rois_a, labels_a, gt_a, _ = mask_rcnn.make_data(cfg, 20, 1, 8)
    _, rois_b, _, _, _ = mask_rcnn.make_data(cfg, 20, 2, 8)
    grid = {tuple(r) for r in torch.cat([rois_a, rois_b]).flatten(0, 1).tolist()}
    assert len(grid) <= len(range(2, 48, 4)) ** 2 * 9  # one fixed set of boxes
    fg = labels_a > 0
    iou = mask_rcnn.box_iou(rois_a[fg], gt_a[fg])
    assert iou.min() >= 0.5 and iou.max() < 0.999  # overlapping, never the object
    assert (labels_a > 0).sum(1).max() <= 4  # at most half foreground


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = mask_rcnn.main(
        ["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"]
    )
    result = json.loads(capsys.readouterr().out)
    assert {
        "metric",
        "value",
        "passed",
        "params",
        "seconds",
        "box_accuracy",
        "ablation",
        "conditions",
        "history",
    } <= set(result)
    assert code == (0 if result["passed"] else 1)
