"""DPM runnable: tiny gate (parts beat a rigid root), the bounded distance transform, the HOG
orientation bins, and the latent step finding a planted part displacement."""

import math

import torch
import torch.nn.functional as F

from runnable import dpm as R


def test_tiny_detects_held_out_figures_and_parts_beat_the_rigid_root():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "average-precision"
    assert result["passed"] and result["value"] >= R.GATE[2], result
    assert result["value"] - result["rigid_root_ap"] >= R.MARGIN, result


def test_displaced_max_is_the_brute_force_windowed_max_minus_deformation_cost():
    torch.manual_seed(0)
    Rsp, d, r = torch.randn(2, 3, 6, 7), torch.rand(3, 4), 2
    got = R.displaced(Rsp, d, r).max(2).values  # (N, P, H, W)
    ref = torch.full_like(got, -math.inf)
    for n in range(2):
        for p in range(3):
            for y in range(6):
                for x in range(7):
                    for dy in range(-r, r + 1):
                        for dx in range(-r, r + 1):
                            if 0 <= y + dy < 6 and 0 <= x + dx < 7:
                                cost = (
                                    d[p, 0] * dx
                                    + d[p, 1] * dy
                                    + d[p, 2] * dx * dx
                                    + d[p, 3] * dy * dy
                                )
                                ref[n, p, y, x] = max(
                                    ref[n, p, y, x], Rsp[n, p, y + dy, x + dx] - cost
                                )
    assert (got - ref).abs().max() <= 1e-5


def test_hog_orientation_bins_follow_an_oriented_edge_and_its_contrast():
    img = torch.zeros(1, 1, 16, 16)
    img[..., 8:] = 1.0  # dark left, bright right: gradient +x
    f = R.hog31(img, 4)
    assert f.shape == (1, R.FEAT, 4, 4)
    edge = f[0, :, :, 1]  # cells on the edge
    assert (edge[:18].argmax(0) == 0).all() and (edge[18:27].argmax(0) == 0).all()
    f_flip = R.hog31(1 - img, 4)[0, :, :, 1]  # contrast reversed: gradient -x
    assert (f_flip[:18].argmax(0) == 9).all()  # sensitive bin moves by 180 degrees
    assert torch.allclose(f_flip[18:], edge[18:], atol=1e-5)  # insensitive bins do not
    horizontal = R.hog31(img.transpose(2, 3), 4)[0, :, 1, :]  # bright bottom: gradient +y (90 deg)
    assert (horizontal[:18].argmax(0) == 4).all() and (horizontal[18:27].argmax(0) == 4).all()


def test_latent_step_picks_the_planted_part_displacement():
    cfg = R.Config(root_size=(2, 2), parts=1, part_size=(1, 1), r=2)
    model = R.build_model(cfg)
    with torch.no_grad():
        model.F_i.zero_()[0, 5] = 1.0  # the part filter reads channel 5
        model.d.copy_(torch.tensor([[0.0, 0.0, 0.01, 0.01]]))
        model.v[0] = torch.tensor([1, 1])  # anchor at (1, 1) of the 4 x 4 part grid
    f_root, f_part = torch.zeros(1, R.FEAT, 2, 2), torch.zeros(1, R.FEAT, 4, 4)
    f_part[0, 5, 3, 0] = 1.0  # part planted at dy = +2, dx = -1
    score, k = model(f_root, f_part)  # (1, 1, 1, 1) one root placement
    offs = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    assert offs[int(k.flatten())] == (2, -1)
    assert (
        abs(score.item() - (1.0 - 0.01 * 1 - 0.01 * 4)) <= 1e-6
    )  # response - d . (dx, dy, dx^2, dy^2)


def test_paper_preset_builds_on_meta_with_two_components_of_six_parts():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
    assert (
        model.F_0.shape == (2, 31, 10, 7)
        and model.F_i.shape == (12, 31, 6, 6)
        and model.d.shape == (12, 4)
    )
    n = sum(p.numel() for p in model.parameters())
    assert n == 2 * 31 * 70 + 2 + 12 * (31 * 36 + 4)


def test_gpu_preset_scores_one_batch_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    img = torch.rand(2, 1, cfg.bg_size, cfg.bg_size)
    s, k = model(R.hog31(F.avg_pool2d(img, 2), cfg.cell), R.hog31(img, cfg.cell))
    assert s.shape[:2] == (2, 2) and torch.isfinite(s).all()
