"""NIN runnable: global average pooling beats a fully connected head on shifted held-out digits
(seeds 0-2); mlpconv + GAP with no fully connected layer; GAP ignores where evidence lies."""

import dataclasses
import json

import pytest
import torch
from torch import nn

from runnable import nin as R


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gap_passes_and_fully_connected_head_fails_on_shifted_digits(seed):
    cfg = dataclasses.replace(R.PRESETS["tiny"], seed=seed)
    result = R.train(cfg)
    assert result["metric"] == R.GATE[0] == "accuracy" and result["seed"] == seed
    assert result["value"] >= R.GATE[2], result
    assert result["ablation"]["value"] < R.GATE[2], result
    assert result["passed"] and result["conditions"] == {}
    assert result["history"]["idea"][-1] == result["value"]
    assert len(result["history"]["ablation"]) == cfg.epochs


def test_paper_preset_is_three_mlpconv_blocks_then_global_average_pooling():
    # The paper states no parameter count, so there is no figure to compare; we pin our count.
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        out = model(torch.empty(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())  # no FC layers
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [5, 1, 1, 5, 1, 1, 3, 1, 1]  # 1x1 = mlpconv
    assert sum(p.numel() for p in model.parameters()) == 966_986


def test_gap_scores_ignore_where_in_the_map_the_evidence_is_and_the_fc_head_does_not():
    torch.manual_seed(0)
    maps = torch.randn(4, 10, 5, 5)
    moved = maps.flatten(2)[:, :, torch.randperm(25)].view_as(maps)  # cells rearranged
    gap, fc = R.GlobalAveragePooling(), R.FullyConnectedHead(10, 5)
    assert (gap(moved) - gap(maps)).abs().max() <= 1e-5
    assert (fc(moved) - fc(maps)).abs().max() > 1e-2
    # and the score is the class map's mean: one class map lit in one cell scores there only
    one = torch.zeros(1, 10, 5, 5)
    one[0, 3, 4, 0] = 25.0
    assert torch.equal(gap(one), torch.eye(10)[3:4])


def test_the_two_nets_differ_only_in_the_head():
    cfg = R.PRESETS["tiny"]
    torch.manual_seed(0)
    gap = R.NIN(cfg)
    torch.manual_seed(0)
    fc = R.NIN(dataclasses.replace(cfg, head="fc"))
    assert all(
        torch.equal(a, b) for a, b in zip(gap.mlpconvs.parameters(), fc.mlpconvs.parameters())
    )
    side = 5  # 20 -> 10 -> 5
    assert sum(p.numel() for p in fc.head.parameters()) == 10 * side * side * 10 + 10
    assert not list(gap.head.parameters())


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
