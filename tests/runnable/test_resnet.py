"""ResNet runnable: degradation gate (residual vs plain twin, same depth, seeds 0-2), ResNet-110
and ResNet-50 parameters against the paper's figures and a count by hand."""

import json
from dataclasses import replace

import pytest
import torch
from torch import nn

from runnable import resnet as R
from tests.conftest import figure


def stated(fig_id: str) -> float:
    """The figure the paper states, from its record."""
    return figure("resnet", fig_id)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_residual_net_passes_the_gate_its_plain_twin_fails(seed):
    result = R.train(replace(R.PRESETS["tiny"], seed=seed))
    assert result["metric"] == R.GATE[0] == "accuracy" and result["depth"] == 56
    assert result["value"] >= R.GATE[2] > result["ablation"]["value"], result
    assert result["residual_train_accuracy"] > result["plain_train_accuracy"]  # optimisation gap
    assert all(result["conditions"].values()) and result["passed"] and result["seed"] == seed
    history = result["history"]
    assert len(history["idea"]) == len(history["ablation"]) == R.PRESETS["tiny"].epochs
    assert history["idea"][-1] == result["value"]
    assert history["ablation"][-1] == result["ablation"]["value"]


def test_paper_preset_is_resnet110_with_1_7_million_parameters():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        out = model(torch.empty(2, 3, 32, 32))
    assert out.shape == (2, 10)
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(convs) == 110
    n = sum(p.numel() for p in model.parameters())
    assert n == 1_727_962  # +1.6 % of 1.7M
    assert abs(n / stated("params-resnet110") - 1) <= 0.02


def bottleneck_resnet_count(blocks, classes=1000):
    """Table 1 counted by hand: conv weights (no biases), two parameters per BN channel, the fc."""
    n, c = 3 * 64 * 7 * 7 + 2 * 64, 64  # conv1 + BN
    for stage, k in enumerate(blocks):
        w = 64 * 2**stage
        for i in range(k):
            n += c * w + 9 * w * w + w * 4 * w + 2 * (w + w + 4 * w)  # 1x1, 3x3, 1x1, BNs
            if i == 0:
                n += c * 4 * w + 2 * 4 * w  # option B projection
            c = 4 * w
    return n + c * classes + classes


def test_paper_imagenet_preset_is_resnet50_with_25_6_million_parameters():
    cfg = R.PRESETS["paper-imagenet"]
    with torch.device("meta"):
        model = R.build_model(cfg)
        out = model(torch.empty(2, 3, 224, 224))
    assert out.shape == (2, 1000) and cfg.depth == 50
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(convs) == 50 + 4  # + 4 projections
    assert sum(isinstance(m, R.Bottleneck) for m in model.modules()) == 16
    n = sum(p.numel() for p in model.parameters())
    assert n == bottleneck_resnet_count((3, 4, 6, 3)) == 25_557_032  # = torchvision's resnet50
    assert abs(n / stated("params-resnet50") - 1) <= 0.02
    with torch.device("meta"):  # ResNet-152 likewise
        deep = R.build_model(replace(cfg, depth=152))
    assert sum(p.numel() for p in deep.parameters()) == bottleneck_resnet_count((3, 8, 36, 3))


def test_bottleneck_is_1x1_3x3_1x1_and_projects_only_where_the_shape_changes():
    first, inner = R.Bottleneck(64, 64, stride=1, residual=True), R.Bottleneck(256, 64, 1, True)
    kernels = [m.kernel_size for m in (first.conv1, first.conv2, first.conv3)]
    assert kernels == [(1, 1), (3, 3), (1, 1)] and first.conv3.out_channels == 256
    assert first.proj is not None and inner.proj is None  # identity inside a stage
    x = torch.randn(2, 256, 8, 8)
    down = R.Bottleneck(256, 128, stride=2, residual=True).eval()
    assert down(x).shape == (2, 512, 4, 4)
    inner.eval()
    torch.nn.init.zeros_(inner.bn3.weight)  # F(x) = 0: y = relu(x)
    assert torch.equal(inner(x), torch.relu(x))


def test_option_a_shortcut_subsamples_and_zero_pads():
    block = R.Block(4, 8, stride=2, residual=True)
    x = torch.randn(2, 4, 6, 6)
    s = block.shortcut(x)
    assert s.shape == (2, 8, 3, 3)
    assert torch.equal(s[:, :4], x[:, :, ::2, ::2]) and not s[:, 4:].any()


def test_plain_and_residual_twins_have_identical_parameters():
    cfg = R.PRESETS["tiny"]
    torch.manual_seed(0)
    plain = R.ResNet(cfg, residual=False)
    torch.manual_seed(0)
    res = R.ResNet(cfg, residual=True)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), res.parameters()))


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1", "--n=1"])
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
    model = R.ResNet(cfg, residual=False)
    loss = nn.functional.cross_entropy(
        model(torch.randn(2, 1, cfg.image_size, cfg.image_size)), torch.tensor([0, 1])
    )
    loss.backward()
    assert torch.isfinite(loss)
