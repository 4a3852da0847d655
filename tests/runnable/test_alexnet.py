"""AlexNet runnable: with §4's translations and dropout the net generalises to shifted held-out
digits and without them it does not (seeds 0-2); ~60M parameters; LRN of §3.3 against torch."""

import dataclasses
import json

import pytest
import torch
from torch import nn

from runnable import alexnet as R
from tests.conftest import figure


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_translations_and_dropout_pass_and_the_net_without_them_fails(seed):
    cfg = dataclasses.replace(R.PRESETS["tiny"], seed=seed)
    result = R.train(cfg)
    assert result["metric"] == R.GATE[0] == "accuracy" and result["seed"] == seed
    assert result["value"] >= R.GATE[2], result
    assert result["ablation"]["value"] < R.GATE[2], result
    assert result["passed"] and result["conditions"] == {}
    assert result["history"]["idea"][-1] == result["value"]
    # the net without §4 fits its training digits at least as well: it overfits, not underfits
    assert result["ablation_train_accuracy"] >= 0.95, result


def test_translate_moves_the_whole_batch_by_one_offset_within_shift():
    x = torch.zeros(3, 1, 10, 10)
    x[:, :, 4, 4] = 1.0
    g = torch.Generator().manual_seed(0)
    moved = R.translate(x, 2, g)
    assert moved.shape == x.shape
    spots = [tuple(torch.nonzero(m[0]).flatten().tolist()) for m in moved]
    assert len(set(spots)) == 1 and all(abs(v - 4) <= 2 for v in spots[0])
    assert torch.equal(R.translate(x, 0, g), x)


def test_paper_preset_has_60_million_parameters():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        out = model(torch.empty(1, 3, 224, 224))
    assert out.shape == (1, 1000)
    n = sum(p.numel() for p in model.parameters())
    # With the §3.5 split (conv2/4/5 grouped): 60,965,224 (+1.6 %); one ungrouped tower: 62.4M.
    assert n == 60_965_224
    assert abs(n / figure("alexnet", "params") - 1) <= 0.02


@pytest.mark.parametrize("n", [5, 4])
def test_lrn_equals_torch_local_response_norm_with_alpha_times_n(n):
    torch.manual_seed(0)
    a = torch.randn(2, 16, 6, 6) * 5
    ours = R.LRN(n=n, k=2.0, alpha=1e-4, beta=0.75)(a)
    theirs = nn.LocalResponseNorm(n, alpha=1e-4 * n, beta=0.75, k=2.0)(a)  # torch divides by n
    assert (ours - theirs).abs().max() <= 1e-5


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
