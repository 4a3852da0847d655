"""FCN runnable: FCN-8s passes the mean IU gate on held-out scenes where FCN-32s fails it (seeds
0-2); a per-pixel colour classifier fails it too; paper-preset shapes on the meta device; bilinear
upsampling and mean IU oracles."""

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from runnable._shapes import make_scenes
from tests.conftest import runnable

fcn = runnable("fcn")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fcn8s_passes_the_mean_iu_gate_and_fcn32s_fails_it(seed):
    result = fcn.train(replace(fcn.PRESETS["tiny"], seed=seed))
    assert result["metric"] == fcn.GATE[0] == "mean-iu" and result["seed"] == seed
    assert result["value"] >= fcn.GATE[2], result  # the idea passes
    assert not result["ablation"]["value"] >= fcn.GATE[2], result  # the ablation fails
    assert result["passed"] and result["conditions"] == {}
    history = result["history"]
    assert len(history["idea"]) == len(history["ablation"]) >= 2
    assert history["idea"][-1] == result["value"]


def test_a_per_pixel_colour_classifier_fails_the_gate():
    """No colour = class shortcut: an MLP on each pixel's RGB alone, trained on the tiny
    preset's training scenes, labels held-out scenes far below the gate."""
    cfg = fcn.PRESETS["tiny"]
    train, test = (
        make_scenes(n, cfg.image_size, seed, cfg.n_classes - 1, cfg.side)
        for n, seed in ((cfg.n_train, 1), (cfg.n_test, 2))
    )
    rgb = train.images.permute(0, 2, 3, 1).reshape(-1, 3)
    label = train.label_map().flatten()
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for _ in range(300):
        idx = torch.randint(len(rgb), (4096,))
        loss = F.cross_entropy(mlp(rgb[idx]), label[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = mlp(test.images.permute(0, 2, 3, 1).reshape(-1, 3)).argmax(1)
    truth = test.label_map().flatten()
    confusion = torch.bincount(truth * 4 + pred, minlength=16).view(4, 4)
    assert fcn.mean_iu(confusion) < fcn.GATE[2] - 0.1  # 0.39 at gate 0.55


def test_paper_preset_is_vgg16_fcn8s_with_21_class_scores_at_input_resolution():
    cfg = fcn.PRESETS["paper"]
    with torch.device("meta"):
        model = fcn.build_model(cfg)
        out = model(torch.empty(1, 3, 224, 224))
    assert out.shape == (1, 21, 224, 224)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(n for n, _ in cfg.stages) == 13 and convs[13].kernel_size == (7, 7)  # conv5_3, fc6
    assert model.fc[0].out_channels == model.fc[3].out_channels == 4096


def test_fcn32s_has_no_skip_scores_and_still_outputs_full_resolution():
    cfg = replace(fcn.PRESETS["tiny"], skips=False)
    model = fcn.build_model(cfg)
    assert not hasattr(model, "score_pool4") and not hasattr(model, "score_pool3")
    assert model.upscore.stride == (32, 32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4, 32, 32)
    shared = {k for k in model.state_dict() if not k.startswith("upscore.")}
    assert shared < set(fcn.build_model(fcn.PRESETS["tiny"]).state_dict())  # same net below


def test_skip_scores_start_at_zero_so_fcn8s_starts_as_a_coarse_net():
    model = fcn.build_model(fcn.PRESETS["tiny"])
    assert model.score_pool4.weight.abs().sum() == 0 and model.score_pool3.weight.abs().sum() == 0


def test_bilinear_deconvolution_equals_bilinear_interpolation_away_from_the_border():
    for factor in (2, 8):
        up = fcn.upsampler(3, factor)
        x = torch.randn(2, 3, 6, 6)
        ours = up(x)
        ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        b = factor  # the deconvolution pads with zeros, interpolation clamps: compare the interior
        assert (ours - ref)[..., b:-b, b:-b].abs().max() <= 1e-5


def test_mean_iu_of_a_hand_checked_confusion_matrix():
    confusion = torch.tensor([[3, 1], [0, 2]])  # rows: truth, columns: prediction
    # class 0: 3 / (4 + 3 - 3) = 0.75; class 1: 2 / (2 + 3 - 2) = 2/3
    assert abs(fcn.mean_iu(confusion) - (0.75 + 2 / 3) / 2) < 1e-12


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = fcn.main(["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "ablation", "history"} <= set(result)
    assert code == (0 if result["passed"] else 1)
