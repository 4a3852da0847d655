"""FCN-8s runnable: tiny gate, paper-preset shapes on the meta device, bilinear upsampling and mean IU oracles."""
import importlib.util
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

PATH = Path(__file__).resolve().parents[2] / "runnable" / "fcn.py"
spec = importlib.util.spec_from_file_location("runnable_fcn", PATH)
fcn = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = fcn
spec.loader.exec_module(fcn)


def test_tiny_preset_reaches_mean_iu_gate_on_held_out_shapes():
    result = fcn.train(fcn.PRESETS["tiny"])
    assert result["metric"] == fcn.GATE[0] == "mean-iu"
    assert result["passed"] and result["value"] >= fcn.GATE[2], result


def test_paper_preset_is_vgg16_fcn8s_with_21_class_scores_at_input_resolution():
    cfg = fcn.PRESETS["paper"]
    with torch.device("meta"):
        model = fcn.build_model(cfg)
        out = model(torch.empty(1, 3, 224, 224))
    assert out.shape == (1, 21, 224, 224)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(n for n, _ in cfg.stages) == 13 and convs[13].kernel_size == (7, 7)   # conv1_1..conv5_3, fc6
    assert model.fc[0].out_channels == model.fc[3].out_channels == 4096


def test_bilinear_deconvolution_equals_bilinear_interpolation_away_from_the_border():
    for factor in (2, 8):
        up = torch.nn.ConvTranspose2d(3, 3, 2 * factor, stride=factor, padding=factor // 2, bias=False)
        with torch.no_grad():
            up.weight.copy_(fcn.bilinear_kernel(3, 2 * factor))
        x = torch.randn(2, 3, 6, 6)
        ours = up(x)
        ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        b = factor  # the deconvolution pads with zeros, interpolation clamps: compare the interior
        assert (ours - ref)[..., b:-b, b:-b].abs().max() <= 1e-5


def test_mean_iu_of_a_hand_checked_confusion_matrix():
    confusion = torch.tensor([[3, 1], [0, 2]])   # rows: truth, columns: prediction
    # class 0: 3 / (4 + 3 - 3) = 0.75; class 1: 2 / (2 + 3 - 2) = 2/3
    assert abs(fcn.mean_iu(confusion) - (0.75 + 2 / 3) / 2) < 1e-12


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = fcn.main(["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)
