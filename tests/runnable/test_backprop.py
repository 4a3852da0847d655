"""Back-propagation runnable: the symmetry gate, hand-written eqs. 4-7 against torch.autograd."""

import json

import torch

from runnable import backprop as R


def test_tiny_solves_the_six_bit_symmetry_problem():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "pattern-accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_symmetry_data_has_the_eight_symmetric_vectors_of_six_bits():
    X, d = R.symmetry_data(6)
    assert X.shape == (64, 6) and int(d.sum()) == 2**3


def test_paper_preset_is_the_6_2_1_net_of_figure_1_on_meta():
    with torch.device("meta"):
        net = R.build_model(R.PRESETS["paper"])
    assert [tuple(W.shape) for W in net.W] == [(2, 7), (1, 3)]  # biases as an extra input
    assert sum(p.numel() for p in net.parameters()) == 2 * 6 + 2 + 2 + 1


def test_hand_written_gradients_equal_autograd():
    torch.manual_seed(0)
    net = R.LayeredNet([6, 4, 3, 2], init_range=1.0)  # deeper than Fig. 1 on purpose
    X, d = torch.rand(10, 6, dtype=torch.float64), torch.rand(10, 2, dtype=torch.float64)
    c = torch.rand(10, dtype=torch.float64)
    ours = net.backward(net(X), d, c)
    Ws = [W.detach().clone().requires_grad_(True) for W in net.W]
    y = X
    for W in Ws:  # the same net, built by autograd
        y = torch.sigmoid(torch.cat([y, torch.ones(len(y), 1, dtype=y.dtype)], 1) @ W.T)
    E = 0.5 * (((y - d) ** 2).sum(1) * c).sum()
    theirs = torch.autograd.grad(E, Ws)
    assert abs(E.item() - R.error(net(X), d, c).item()) <= 1e-12
    for a, b in zip(ours, theirs):
        assert (a - b).abs().max() <= 1e-6


def test_a_small_step_against_the_hand_written_gradient_lowers_E():
    cfg = R.PRESETS["tiny"]
    net = R.build_model(cfg)
    X, d = R.symmetry_data(cfg.n_bits)
    c = torch.ones(len(X), dtype=X.dtype)
    before = R.error(net(X), d, c)
    for W, g in zip(net.W, net.backward(net(X), d, c)):
        W.sub_(0.01 * g)
    assert R.error(net(X), d, c) < before


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--sweeps=10"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)
