"""DenseNet runnable: tiny gate, DenseNet (L=40, k=12) parameters of Table 2, concatenation."""
import json

import torch
from torch import nn

from runnable import densenet as R
from tests.conftest import ROOT, figure


def stated(fig_id: str) -> float:
    """The figure the paper states, from its record."""
    return figure("densenet", fig_id)


def count(preset: str) -> int:
    with torch.device("meta"):
        model = R.build_model(R.PRESETS[preset])
    return sum(p.numel() for p in model.parameters())


def test_tiny_reaches_gate_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_densenet_40_k12_has_1_0_million_parameters():
    n = count("paper")
    assert n == 1_019_722                   # Table 2 rounds to 1.0M; +1.97 %, inside the 2 % band
    assert abs(n / stated("params-densenet40") - 1) <= 0.02


def test_gpu_preset_is_densenet_bc_100_k12_with_0_8_million_parameters():
    assert abs(count("gpu") / 0.8e6 - 1) <= 0.05                               # 768,730; Table 2: 0.8M


def test_dense_layer_keeps_its_input_and_adds_k_maps():
    layer = R.DenseLayer(20, k=12, bottleneck=False, dropout=0.0)
    x = torch.randn(2, 20, 5, 5)
    y = layer(x)
    assert y.shape == (2, 32, 5, 5) and torch.equal(y[:, :20], x)            # eq. (2): concatenation


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    loss = nn.functional.cross_entropy(model(torch.randn(2, 1, cfg.image_size, cfg.image_size)),
                                       torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)
