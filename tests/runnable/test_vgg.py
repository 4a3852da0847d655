"""VGG runnable: tiny gate, configuration D's 138M parameters, and the receptive field of stacked 3x3s."""

import json

import pytest
import torch
from torch import nn

from runnable import vgg as R
from tests.conftest import figure


def test_tiny_reaches_gate_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_is_configuration_d_with_138_million_parameters():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        out = model(torch.empty(1, 3, 224, 224))
    assert out.shape == (1, 1000)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert len(convs) + 3 == 16  # VGG-16: 13 conv + 3 FC
    n = sum(p.numel() for p in model.parameters())
    assert n == 138_357_544
    assert abs(n / figure("vgg", "params") - 1) <= 0.02


@pytest.mark.parametrize("config, millions", [("A", 133), ("E", 144)])
def test_other_columns_of_table_2(config, millions):
    import dataclasses

    cfg = dataclasses.replace(R.PRESETS["paper"], config=config)
    with torch.device("meta"):
        n = sum(p.numel() for p in R.build_model(cfg).parameters())
    assert round(n / 1e6) == millions


@pytest.mark.parametrize("depth, field", [(1, 3), (2, 5), (3, 7)])
def test_stacked_3x3_convolutions_see_a_5x5_then_7x7_window(depth, field):
    """§2.3: the gradient of one output pixel reaches exactly a field x field patch of the input."""
    torch.manual_seed(0)
    stack = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(depth)])
    x = torch.randn(1, 1, 15, 15, requires_grad=True)
    stack(x)[0, 0, 7, 7].backward()
    rows, cols = (x.grad[0, 0] != 0).nonzero().T
    assert rows.max() - rows.min() + 1 == field and cols.max() - cols.min() + 1 == field


def test_three_3x3_layers_have_27_c2_weights_against_49_c2_for_one_7x7():
    C = 8
    three = sum(nn.Conv2d(C, C, 3, bias=False).weight.numel() for _ in range(3))
    assert three == 27 * C * C and nn.Conv2d(C, C, 7, bias=False).weight.numel() == 49 * C * C


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    loss = nn.functional.cross_entropy(
        model(torch.randn(2, 1, cfg.image_size, cfg.image_size)), torch.tensor([0, 1])
    )
    loss.backward()
    assert torch.isfinite(loss)
