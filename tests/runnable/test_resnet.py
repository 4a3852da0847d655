"""ResNet runnable: degradation gate (plain vs residual, same depth), ResNet-110 parameters."""
import json

import torch
from torch import nn

from runnable import resnet as R
from tests.conftest import ROOT, figure


def stated(fig_id: str) -> float:
    """The figure the paper states, from its record."""
    return figure("resnet", fig_id)


def test_tiny_residual_net_beats_plain_net_of_same_depth():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "residual-minus-plain" and result["depth"] == 56
    assert result["value"] >= R.GATE[2], result
    assert result["residual_accuracy"] >= R.RESIDUAL_FLOOR and result["passed"], result
    assert result["residual_train_accuracy"] > result["plain_train_accuracy"]   # an optimisation gap


def test_paper_preset_is_resnet110_with_1_7_million_parameters():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        out = model(torch.empty(2, 3, 32, 32))
    assert out.shape == (2, 10)
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(convs) == 110
    n = sum(p.numel() for p in model.parameters())
    assert n == 1_727_962                                                      # +1.6 % of 1.7M
    assert abs(n / stated("params-resnet110") - 1) <= 0.02


def test_option_a_shortcut_subsamples_and_zero_pads():
    block = R.Block(4, 8, stride=2, residual=True)
    x = torch.randn(2, 4, 6, 6)
    s = block.shortcut(x)
    assert s.shape == (2, 8, 3, 3)
    assert torch.equal(s[:, :4], x[:, :, ::2, ::2]) and not s[:, 4:].any()


def test_plain_and_residual_twins_have_identical_parameters():
    cfg = R.PRESETS["tiny"]
    torch.manual_seed(0)
    plain = R.CifarNet(cfg, residual=False)
    torch.manual_seed(0)
    res = R.CifarNet(cfg, residual=True)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), res.parameters()))


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1", "--n=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.CifarNet(cfg, residual=False)
    loss = nn.functional.cross_entropy(model(torch.randn(2, 1, cfg.image_size, cfg.image_size)),
                                       torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)
