"""AlphaGo runnable: the tiny gate (MCTS + nets vs a perfect solver on held-out openings), the paper's
policy / value network shapes, the solver, and properties of the search (no torch oracle for MCTS)."""

import dataclasses
import json
import random

import torch

from runnable import alphago as R

EMPTY = (0,) * 9


def uniform_evaluator(s):
    """Stand-in for the networks: uniform priors over legal moves, v = 0, uniform rollouts."""
    w = [float(v == 0) for v in s]
    p = [x / sum(w) for x in w]
    return p, 0.0, p


def test_tiny_mcts_with_nets_holds_95_percent_against_the_solver_on_held_out_openings():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "non-loss-rate"
    assert result["passed"] and result["value"] >= R.GATE[2], result
    assert result["value"] >= result["policy_non_loss_rate"], (
        result
    )  # search adds to the raw policy


def test_paper_preset_is_the_13_layer_192_filter_policy_and_the_value_network():
    cfg = R.PRESETS["paper"]
    with torch.device("meta"):
        model = R.build_model(cfg)
    p_sigma, v_theta = model.p_sigma, model.v_theta
    convs = list(p_sigma.convs) + [p_sigma.head]
    assert len(convs) == 13  # Methods: 13 layers
    assert convs[0].weight.shape == (192, 48, 5, 5)  # 48 planes, k = 192, 5x5
    assert all(c.weight.shape == (192, 192, 3, 3) for c in convs[1:-1])
    assert convs[-1].weight.shape == (1, 192, 1, 1) and p_sigma.b.shape == (
        361,
    )  # 1x1, bias per point
    n = sum(p.numel() for p in p_sigma.parameters())
    assert n == 48 * 192 * 25 + 192 + 11 * (192 * 192 * 9 + 192) + 192 + 361 == 3_882_793
    assert v_theta.convs[0].weight.shape == (192, 49, 5, 5)  # + the player-colour plane
    assert v_theta.fc.out_features == 256 and v_theta.out.out_features == 1


def test_solver_values_known_positions():
    assert R.value(EMPTY) == 0  # tic-tac-toe is a draw
    assert len(R.VALUE) == 5478  # every legal position, solved
    x_wins = (1, 1, 0, -1, -1, 0, 0, 0, 0)  # X to move, 2 wins at once
    assert R.value(x_wins) == 1 and 2 in R.best(x_wins)
    fork = (1, 0, 0, 0, -1, 0, 0, 0, 1)  # X corners, O centre, O to move
    assert R.value(fork) == 0 and set(R.best(fork)) == {1, 3, 5, 7}  # only an edge holds the draw
    assert R.result((1, 1, 1, -1, -1, 0, 0, 0, 0)) == -1  # O to move and X has won


def test_mcts_takes_the_immediate_win_and_blocks_the_immediate_loss():
    cfg = dataclasses.replace(R.PRESETS["tiny"], simulations=200)
    for seed in range(3):
        assert (
            R.mcts(uniform_evaluator, (1, 1, 0, -1, -1, 0, 0, 0, 0), cfg, random.Random(seed)) == 2
        )
        assert (
            R.mcts(uniform_evaluator, (1, 1, 0, 0, -1, 0, 0, 0, 0), cfg, random.Random(seed)) == 2
        )


def test_policy_is_a_distribution_over_legal_moves_and_value_lies_in_minus_one_one():
    torch.manual_seed(0)
    model = R.build_model(R.PRESETS["tiny"])
    states = [EMPTY, (1, 0, 0, 0, -1, 0, 0, 0, 1), (1, 1, 0, -1, -1, 0, 0, 0, 0)]
    x, legal = R.features(states)
    assert x.shape == (3, 4, 3, 3) and R.features(states, colour=True)[0].shape == (3, 5, 3, 3)
    for net in (model.p_sigma, model.p_pi):
        p = net(x, legal).exp()
        assert torch.allclose(p.sum(-1), torch.ones(3)) and (p[~legal] == 0).all()
    v = model.v_theta(R.features(states, colour=True)[0])
    assert v.shape == (3,) and (v.abs() <= 1).all()


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(
        [
            "--preset",
            "tiny",
            "--json",
            "--expert_games=40",
            "--sl_epochs=1",
            "--value_games=40",
            "--value_epochs=1",
            "--simulations=8",
            "--eval_rounds=1",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_networks_run_a_forward_pass_on_cpu():
    model = R.build_model(R.PRESETS["gpu"])
    x, legal = R.features([EMPTY, (1, 0, 0, 0, -1, 0, 0, 0, 0)])
    assert torch.isfinite(model.p_sigma(x, legal)[legal]).all()
    assert torch.isfinite(model.v_theta(R.features([EMPTY], colour=True)[0])).all()
