"""AlexNet runnable: tiny gate, ~60M parameters of the two-GPU net, LRN of §3.3 against torch."""
import json

import pytest
import torch
from torch import nn

from runnable import alexnet as R
from tests.conftest import ROOT, figure


def stated(fig_id: str) -> float:
    """The figure the paper states, from its record."""
    return figure("alexnet", fig_id)


def test_tiny_reaches_gate_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_has_60_million_parameters():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        out = model(torch.empty(1, 3, 224, 224))
    assert out.shape == (1, 1000)
    n = sum(p.numel() for p in model.parameters())
    # With the §3.5 split (conv2/4/5 grouped): 60,965,224 (+1.6 %); one ungrouped tower: 62.4M (+4 %).
    assert n == 60_965_224
    assert abs(n / stated("params") - 1) <= 0.02


@pytest.mark.parametrize("n", [5, 4])
def test_lrn_equals_torch_local_response_norm_with_alpha_times_n(n):
    torch.manual_seed(0)
    a = torch.randn(2, 16, 6, 6) * 5
    ours = R.LRN(n=n, k=2.0, alpha=1e-4, beta=0.75)(a)
    theirs = nn.LocalResponseNorm(n, alpha=1e-4 * n, beta=0.75, k=2.0)(a)   # torch divides alpha by n
    assert (ours - theirs).abs().max() <= 1e-5


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
