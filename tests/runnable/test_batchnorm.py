"""Batch normalization runnable: Alg. 1/2 against nn.BatchNorm1d/2d, and the BN-vs-plain gate."""

import json

import pytest
import torch
from torch import nn

from runnable import batchnorm as R


def test_tiny_bn_net_learns_at_a_step_size_where_the_plain_net_lags():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "bn-minus-plain"
    assert result["passed"] and result["value"] >= R.GATE[2], result
    assert result["bn_accuracy"] >= 0.9, result  # and BN itself really learned


@pytest.mark.parametrize(
    "shape, Torch", [((32, 7), nn.BatchNorm1d), ((8, 5, 6, 6), nn.BatchNorm2d)]
)
def test_alg_1_and_2_equal_torch_batchnorm_in_train_and_eval_mode(shape, Torch):
    torch.manual_seed(0)
    C = shape[1]
    ours, theirs = R.BatchNorm(C, eps=1e-5, momentum=0.1), Torch(C, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        ours.gamma.copy_(torch.rand(C) + 0.5)
        ours.beta.copy_(torch.randn(C))
        theirs.weight.copy_(ours.gamma)
        theirs.bias.copy_(ours.beta)
    for _ in range(3):  # training: batch statistics
        x = torch.randn(*shape) * 3 + 1
        assert (ours(x) - theirs(x)).abs().max() <= 1e-5
    assert (ours.running_mean - theirs.running_mean).abs().max() <= 1e-5
    assert (ours.running_var - theirs.running_var).abs().max() <= 1e-5  # unbiased m/(m-1), Alg. 2
    ours.eval(), theirs.eval()  # inference: population statistics
    x = torch.randn(*shape)
    assert (ours(x) - theirs(x)).abs().max() <= 1e-5


def test_training_output_is_standardised_before_gamma_and_beta():
    bn = R.BatchNorm(4)
    y = bn(torch.randn(256, 4) * 5 + 3)
    assert y.mean(0).abs().max() < 1e-5 and (y.var(0, unbiased=False) - 1).abs().max() < 1e-3


def test_paper_preset_is_the_784_100_100_100_10_net_of_section_4_1():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    assert n == 784 * 100 + 2 * 100 * 100 + 3 * 2 * 100 + 100 * 10 + 10  # no biases before BN


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--steps=5"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)
