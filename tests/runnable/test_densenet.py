"""DenseNet runnable: a DenseNet beats a ResNet with at least as many parameters on shifted digits
(seeds 0-2); DenseNet (L=40, k=12) parameters of Table 2; concatenation keeps every input."""

import dataclasses
import json

import pytest
import torch
from torch import nn

from runnable import densenet as R
from tests.conftest import figure


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def built(preset: str, make=R.DenseNet):
    with torch.device("meta"):
        return make(R.PRESETS[preset])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_densenet_passes_and_a_resnet_with_as_many_parameters_fails(seed):
    cfg = dataclasses.replace(R.PRESETS["tiny"], seed=seed)
    result = R.train(cfg)
    assert result["metric"] == R.GATE[0] == "accuracy" and result["seed"] == seed
    assert result["value"] >= R.GATE[2], result
    assert result["ablation"]["value"] < R.GATE[2], result
    assert result["passed"] and all(result["conditions"].values()), result
    assert result["history"]["idea"][-1] == result["value"]


@pytest.mark.parametrize("preset", ["tiny", "paper", "gpu"])
def test_the_resnet_has_at_least_the_densenets_parameters_and_at_most_15_percent_more(preset):
    dense, res = count(built(preset)), count(built(preset, R.ResNet))
    assert 1 <= res / dense <= 1.15, (dense, res)


def test_paper_preset_densenet_40_k12_has_1_0_million_parameters():
    n = count(built("paper"))
    assert n == 1_019_722  # Table 2 rounds to 1.0M; +1.97 %, inside the 2 % band
    assert abs(n / figure("densenet", "params-densenet40") - 1) <= 0.02


def test_gpu_preset_is_densenet_bc_100_k12_with_0_8_million_parameters():
    n = count(built("gpu"))
    assert abs(n / figure("densenet", "params-densenet-bc100") - 1) <= 0.05  # 768,730; 0.8M


def test_dense_layer_keeps_its_input_and_adds_k_maps():
    layer = R.DenseLayer(20, k=12, bottleneck=False, dropout=0.0)
    x = torch.randn(2, 20, 5, 5)
    y = layer(x)
    assert y.shape == (2, 32, 5, 5) and torch.equal(y[:, :20], x)  # eq. (2): concat


def test_residual_block_adds_its_input_back():
    block = R.ResidualBlock(6, 6, stride=1).eval()
    for p in block.F[-1].parameters():
        nn.init.zeros_(p)  # F(x) = 0
    x = torch.randn(2, 6, 5, 5)
    assert torch.equal(block(x), x)


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {
        "metric",
        "value",
        "ablation",
        "conditions",
        "history",
        "passed",
        "seed",
        "params",
        "seconds",
    } <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    loss = nn.functional.cross_entropy(
        model(torch.randn(2, 1, cfg.image_size, cfg.image_size)), torch.tensor([0, 1])
    )
    loss.backward()
    assert torch.isfinite(loss)
