"""LeNet-5 runnable: tiny gate, the 60,000 free parameters of §II.B, the C3 connection table."""
import json

import torch
import torch.nn.functional as F

from runnable import lenet as R
from tests.conftest import ROOT, figure


def stated(fig_id: str) -> float:
    """The figure the paper states, from its record."""
    return figure("lenet", fig_id)


def test_tiny_reaches_97_percent_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_has_the_60000_trainable_parameters_of_section_2b():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    # C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 + F6 10,164; the 84 x 10 RBF centres are
    # fixed (a buffer), which would make 60,840.
    assert n == 156 + 12 + 1516 + 32 + 48120 + 10164 == 60_000
    assert abs(n / stated("params") - 1) <= 0.02


def test_c3_follows_table_1_and_equals_a_masked_full_convolution():
    assert sum(map(len, R.C3_TABLE)) == 60 and [len(c) for c in R.C3_TABLE].count(4) == 9
    torch.manual_seed(0)
    c3 = R.C3()
    full = torch.zeros(16, 6, 25)
    for k, (o, i) in enumerate((o, i) for o, ins in enumerate(R.C3_TABLE) for i in ins):
        full[o, i] = c3.weight[k].detach()
    x = torch.randn(2, 6, 14, 14)
    ref = F.conv2d(x, full.view(16, 6, 5, 5), c3.bias.detach())
    assert (c3(x) - ref).abs().max() <= 1e-5


def test_map_loss_is_eq_9():
    y, j = torch.tensor([[3.0, 1.0, 2.0]]), 1.5
    expected = 1.0 + torch.log(torch.exp(torch.tensor(-j)) + torch.exp(-y).sum())
    assert abs(R.map_loss(y, torch.tensor([1]), j).item() - expected.item()) <= 1e-5


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    loss = R.map_loss(model(torch.randn(2, 1, cfg.image_size, cfg.image_size)), torch.tensor([0, 1]), cfg.j)
    loss.backward()
    assert torch.isfinite(loss)
