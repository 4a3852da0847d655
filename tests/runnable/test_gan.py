"""GAN runnable: tiny mode-coverage gate, an untrained generator failing the same check, the metric itself."""

import json
import math

import torch

from runnable import gan as R


def test_tiny_preset_covers_the_modes_of_the_ring():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "modes-covered"
    assert (
        result["passed"]
        and result["value"] >= R.GATE[2]
        and result["high_quality"] >= R.QUALITY_MIN
    ), result


def test_an_untrained_generator_fails_the_same_check():
    cfg = R.PRESETS["tiny"]
    torch.manual_seed(cfg.seed)
    ev = R.evaluate(R.build_model(cfg).G, cfg)
    assert ev["modes_covered"] < R.GATE[2] and ev["high_quality"] < R.QUALITY_MIN, ev


def test_mode_coverage_of_real_samples_and_of_a_collapsed_generator():
    cfg = R.PRESETS["tiny"]
    g = torch.Generator().manual_seed(0)
    covered, quality = R.mode_coverage(R.sample_data(cfg, 4000, g), cfg)
    assert covered == 1.0 and quality > 0.98  # 3 sigma holds ~99 % of a 2-D Gaussian
    collapsed = R.centres(cfg)[3] + cfg.sigma * torch.randn(4000, 2, generator=g)
    assert R.mode_coverage(collapsed, cfg)[0] == 1 / cfg.modes
    assert R.mmd(collapsed, R.sample_data(cfg, 4000, g)) > 10 * R.mmd(
        R.sample_data(cfg, 4000, g), R.sample_data(cfg, 4000, g)
    )


def test_ring_centres_are_evenly_spaced():
    c = R.centres(R.PRESETS["tiny"])
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0))
    assert abs(torch.atan2(c[1, 1], c[1, 0]).item() - 2 * math.pi / 8) < 1e-6


def test_maxout_is_the_max_over_pieces_of_a_linear_map():
    torch.manual_seed(0)
    m = R.Maxout(3, 4, 5)
    x = torch.randn(6, 3)
    ref = (x @ m.linear.weight.T + m.linear.bias).view(6, 4, 5).max(-1).values
    assert (m(x) - ref).abs().max() <= 1e-5


def test_paper_preset_has_mnist_scale_widths():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
    assert [m.out_features for m in model.G.net if isinstance(m, torch.nn.Linear)] == [
        1200,
        1200,
        2,
    ]
    assert model.G.net[0].in_features == 100
    assert [(m.units, m.pieces) for m in model.D.net if isinstance(m, R.Maxout)] == [
        (240, 5),
        (240, 5),
    ]


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--steps=20"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "mmd"} <= set(result)
    assert code == (0 if result["passed"] else 1)
