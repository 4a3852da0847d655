"""Dropout runnable: the dropout-minus-plain gate, and our Bernoulli layer against F.dropout."""

import json

import torch
import torch.nn.functional as F

from runnable import dropout as R


def test_tiny_dropout_beats_the_plain_net_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "dropout-minus-plain"
    assert result["passed"] and result["value"] >= R.GATE[2], result
    assert result["dropout_accuracy"] >= 0.6, result  # it learned, not just less wrong


def test_dropout_layer_statistics_match_torch_dropout():
    torch.manual_seed(0)
    y = torch.rand(200, 500) + 0.5
    for p in (0.5, 0.8):  # p = retain probability (§4)
        layer = R.Dropout(p).train()
        ours, theirs = (
            layer(y),
            F.dropout(y, p=1 - p, training=True),
        )  # torch's p = drop probability
        for out in (ours, theirs):
            kept = out != 0
            assert abs(kept.float().mean().item() - p) < 0.01  # keep rate
            assert torch.allclose(out[kept], (y / p)[kept])  # kept units scaled by 1/p
            assert abs(out.mean().item() / y.mean().item() - 1) < 0.01  # E[y~] = y
        assert abs((ours != 0).float().mean() - (theirs != 0).float().mean()) < 0.01


def test_eval_mode_is_the_identity_like_torch():
    y = torch.randn(4, 7)
    layer = R.Dropout(0.5).eval()
    assert torch.equal(layer(y), y) and torch.equal(F.dropout(y, 0.5, training=False), y)


def test_inverted_scaling_equals_scaling_weights_by_p_at_test_time():
    """§10: training with r*y/p and testing with W equals training with r*y and testing with p*W."""
    torch.manual_seed(0)
    W, y, p = torch.randn(3, 6), torch.rand(5, 6), 0.5
    r = torch.bernoulli(torch.full_like(y, p))
    inverted_train, plain_train = (r * y / p) @ W.T, (r * y) @ (W / p).T
    assert (inverted_train - plain_train).abs().max() <= 1e-5  # same net, weights rescaled by 1/p
    assert ((y @ W.T) - (y @ (p * (W / p)).T)).abs().max() <= 1e-5  # test time: p * (W / p) = W


def test_max_norm_projects_each_unit_onto_the_ball():
    cfg = R.PRESETS["tiny"]
    model = R.build_model(cfg)
    with torch.no_grad():
        model.net[1].weight.mul_(100)
    model.apply_max_norm(3.0)
    assert model.net[1].weight.norm(dim=1).max() <= 3.0 + 1e-4


def test_paper_preset_is_the_mnist_net_of_table_2():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    assert n == 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 2048 + 2048 + 2048 * 10 + 10


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=2", "--repeats=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s"} <= set(result)
    assert code == (0 if result["passed"] else 1)
