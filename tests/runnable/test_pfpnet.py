"""PFPNet runnable: the parallel pyramid passes the mAP gate on held-out scenes with many small
objects where a single-scale head fails it (seeds 0-2); every level aggregates every scale
through equally deep branches; the paper preset's pyramid on the meta device; anchors, box coding
and matching. IoU / NMS / mAP are tested in test_boxes.py."""

import json
from dataclasses import replace

import pytest
import torch

from tests.conftest import runnable

pfpnet = runnable("pfpnet")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parallel_pyramid_passes_the_map_gate_and_a_single_scale_head_fails_it(seed):
    result = pfpnet.train(replace(pfpnet.PRESETS["tiny"], seed=seed))
    assert result["metric"] == pfpnet.GATE[0] == "map50" and result["seed"] == seed
    assert result["value"] >= pfpnet.GATE[2], result
    assert not result["ablation"]["value"] >= pfpnet.GATE[2], result
    assert result["passed"]
    assert len(result["history"]["idea"]) == len(result["history"]["ablation"]) >= 2


def test_every_level_aggregates_every_scale_through_equally_deep_branches():
    """Sec. 3.2: P_n concatenates its own F_H^n with the reduced F_L^m of every other scale m, so
    the score of level n takes gradient from every bottleneck branch, from the reductions of the
    others, and from its own MSCA and head only; and each level goes through as many convs."""
    torch.manual_seed(0)
    cfg = pfpnet.PRESETS["tiny"]
    model = pfpnet.build_model(cfg)
    cls, _ = model(torch.randn(2, 3, cfg.image_size, cfg.image_size))
    s0, A, starts = cfg.image_size // 2 ** cfg.base.count("m"), len(cfg.aspect_ratios), [0]
    for n in range(cfg.N):
        starts.append(starts[-1] + (s0 // 2**n) ** 2 * A)
    depths = []
    for n in range(cfg.N):
        model.zero_grad()
        cls[:, starts[n] : starts[n + 1]].sum().backward(retain_graph=True)
        touched = lambda mods: [
            m[0].weight.grad is not None and m[0].weight.grad.abs().sum() > 0 for m in mods
        ]  # noqa: E731
        assert touched(model.bottleneck) == [True] * cfg.N
        assert touched(model.reduce) == [m != n for m in range(cfg.N)]
        assert touched(model.msca) == [m == n for m in range(cfg.N)]
        heads = [
            h.weight.grad is not None and h.weight.grad.abs().sum() > 0 for h in model.cls_head
        ]
        assert heads == [m == n for m in range(cfg.N)]
        depths.append(
            sum(
                isinstance(m, torch.nn.Conv2d)
                and m.weight.grad is not None
                and bool(m.weight.grad.abs().sum() > 0)
                for m in model.modules()
            )
        )
    assert len(set(depths)) == 1, depths


def test_single_scale_ablation_puts_every_anchor_size_on_the_coarsest_map():
    cfg = replace(pfpnet.PRESETS["tiny"], single_scale=True)
    model = pfpnet.build_model(cfg)
    cls, box = model(torch.randn(1, 3, cfg.image_size, cfg.image_size))
    anchors = pfpnet.make_anchors(cfg)
    coarse = cfg.image_size // (2 ** cfg.base.count("m") * 2 ** (cfg.N - 1))
    assert cls.shape[1] == box.shape[1] == len(anchors) == coarse**2 * cfg.N * 3
    side = lambda a: (a[:, 2:] - a[:, :2]).prod(-1).sqrt().round().unique().tolist()  # noqa: E731
    assert side(anchors) == side(pfpnet.make_anchors(pfpnet.PRESETS["tiny"])) == [8, 16, 32]


def test_paper_preset_builds_a_4_level_parallel_pyramid_40_20_10_5_on_320x320():
    cfg = pfpnet.PRESETS["paper"]
    with torch.device("meta"):
        model = pfpnet.build_model(cfg)
        cls, box = model(torch.empty(1, 3, 320, 320))
    n_anchors = (40**2 + 20**2 + 10**2 + 5**2) * len(cfg.aspect_ratios)
    assert cls.shape == (1, n_anchors, 21) and box.shape == (1, n_anchors, 4)
    assert len(pfpnet.make_anchors(cfg)) == n_anchors


def test_anchors_follow_the_head_order_level_row_column_aspect():
    cfg = pfpnet.Config()
    anchors = pfpnet.make_anchors(cfg)
    s = 2 ** cfg.base.count("m")  # stride of level 0
    side = 2 * s  # anchor_scale * stride
    lo, hi = s / 2 - side / 2, s / 2 + side / 2
    assert torch.allclose(anchors[0], torch.tensor([lo, lo, hi, hi]))
    A = len(cfg.aspect_ratios)
    assert torch.allclose((anchors[A] - anchors[0])[[0, 2]], torch.tensor([s, s]).float())
    assert len(anchors) == sum((cfg.image_size // (s * 2**n)) ** 2 for n in range(cfg.N)) * A


def test_box_encoding_round_trips():
    anchors = torch.tensor([[0.0, 0, 8, 8], [4.0, 4, 20, 12]])
    boxes = torch.tensor([[1.0, 2, 7, 11], [3.0, 5, 25, 9]])
    assert (pfpnet.decode(pfpnet.encode(boxes, anchors), anchors) - boxes).abs().max() <= 1e-5


def test_matching_gives_each_ground_truth_its_best_anchor_and_background_elsewhere():
    anchors = torch.tensor([[0.0, 0, 8, 8], [8.0, 8, 16, 16], [0.0, 0, 16, 16], [30.0, 30, 40, 40]])
    boxes, labels = torch.tensor([[1.0, 1, 7, 7], [26.0, 26, 36, 36]]), torch.tensor([2, 0])
    t_cls, t_box = pfpnet.match(boxes, labels, anchors)
    # box 0: IoU 36/64 with anchor 0 -> class 2 + 1; box 1: IoU 36/164 < 0.5, still its best anchor
    assert t_cls.tolist() == [3, 0, 0, 1]


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = pfpnet.main(["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "ablation", "history"} <= set(result)
    assert code == (0 if result["passed"] else 1)
