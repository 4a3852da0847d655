"""Inception-v3 runnable: tiny gate, the abstract's "less than 25 million parameters", label
smoothing (§7) against F.cross_entropy, and the 1 x n + n x 1 factorisation of §3.2."""

import dataclasses
import json

import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import figure, runnable

R = runnable("inception-v3")


def test_tiny_reaches_gate_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_has_table_1_grids_and_fewer_than_25_million_parameters():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"]).train()
        x = torch.empty(2, 3, 299, 299)
        h = model.lower(model.stem(x))
        assert h.shape[1:] == (768, 17, 17) and model.upper(h).shape[1:] == (2048, 8, 8)
        logits, aux = model(x)
        assert logits.shape == aux.shape == (2, 1000)
    n = sum(p.numel() for p in model.parameters())
    n_aux = sum(p.numel() for p in model.aux.parameters())  # dropped at inference
    assert n - n_aux == 23_687_112
    assert n - n_aux < figure("inception-v3", "params-bound")  # abstract: "less than 25 million"


def test_label_smoothing_equals_torch_cross_entropy_with_label_smoothing():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 10) * 3, torch.randint(0, 10, (16,))
    for eps in (0.0, 0.1, 0.3):
        ours = R.label_smoothing_loss(logits, y, eps)
        theirs = F.cross_entropy(logits, y, label_smoothing=eps)
        assert abs(ours.item() - theirs.item()) <= 1e-5


def test_1xn_then_nx1_equals_one_nxn_convolution_with_a_rank_1_kernel():
    """§3.2 with one channel and no non-linearity: 1x3 then 3x1 is a 3x3 kernel v u^T (6 vs 9 weights)."""
    torch.manual_seed(0)
    u, v = torch.randn(3), torch.randn(3)
    x = torch.randn(1, 1, 9, 9)
    two = F.conv2d(
        F.conv2d(x, u.view(1, 1, 1, 3), padding=(0, 1)), v.view(1, 1, 3, 1), padding=(1, 0)
    )
    one = F.conv2d(x, torch.outer(v, u).view(1, 1, 3, 3), padding=1)
    assert (two - one).abs().max() <= 1e-5
    f = R.factorised(4, 4, 4, 7)
    assert f(torch.randn(1, 4, 17, 17)).shape == (1, 4, 17, 17)
    assert sum(m.weight.numel() for m in f.modules() if isinstance(m, nn.Conv2d)) == 2 * 7 * 16


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = dataclasses.replace(R.PRESETS["gpu"])
    model = R.build_model(cfg)
    logits, _ = model(torch.randn(2, 1, cfg.image_size, cfg.image_size))
    loss = R.label_smoothing_loss(logits, torch.tensor([0, 1]), cfg.eps)
    loss.backward()
    assert torch.isfinite(loss)
