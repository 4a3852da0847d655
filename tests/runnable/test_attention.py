"""Bahdanau attention runnable: tiny gate (exact match and a diagonal alignment), encoder oracle."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from runnable import attention as A


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_copies_and_aligns_with_attention_and_fails_with_a_fixed_context(seed):
    r = A.train(replace(A.PRESETS["tiny"], seed=seed))
    gate = lambda v: v >= A.GATE[2]
    assert gate(r["value"]) and not gate(r["ablation"]["value"]) and r["passed"], r
    assert r["conditions"] == {"alignment is diagonal": True} and r["alignment"] >= 0.9, r
    assert r["seed"] == seed and r["history"]["ablation"][-1] == r["ablation"]["value"]


def test_fixed_context_is_the_same_at_every_step():
    """The ablation: without the alignment model, alpha is uniform and c_i the mean annotation."""
    torch.manual_seed(0)
    cfg = A.Config(m=8, n=12, n_a=10, l=6, attend=False)
    model = A.build_model(cfg).eval()
    x = torch.randint(A.N_SPECIAL, cfg.vocab, (3, 5))
    with torch.no_grad():
        _, alpha = model(x, torch.randint(A.N_SPECIAL, cfg.vocab, (3, 4)))
    assert torch.equal(alpha, torch.full((3, 4, 5), 1 / 5))


def test_annotations_equal_grucell_run_both_ways():
    """h_j = [fwd h_j; bwd h_j] and s_0 = tanh(W_s bwd h_1), checked against nn.GRUCell stepped by hand."""
    torch.manual_seed(0)
    cfg = A.Config(m=8, n=12, n_a=10, l=6)
    model = A.build_model(cfg).eval()
    x = torch.randint(A.N_SPECIAL, cfg.vocab, (3, 5))
    h, s_0 = model.encode(x)
    fwd, bwd = nn.GRUCell(cfg.m, cfg.n), nn.GRUCell(cfg.m, cfg.n)
    gru = model.encoder
    with torch.no_grad():
        for cell, sfx in [(fwd, "l0"), (bwd, "l0_reverse")]:
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(gru, f"{name}_{sfx}"))
        e = model.E_x(x)  # (B, T_x, m)
        state, expected_fwd = torch.zeros(3, cfg.n), []
        for j in range(5):
            state = fwd(e[:, j], state)
            expected_fwd.append(state)
        state, expected_bwd = torch.zeros(3, cfg.n), [None] * 5
        for j in reversed(range(5)):
            state = bwd(e[:, j], state)
            expected_bwd[j] = state
    expected = torch.cat([torch.stack(expected_fwd, 1), torch.stack(expected_bwd, 1)], -1)
    assert (h - expected).abs().max() <= 1e-5
    assert (s_0 - torch.tanh(model.W_s(expected_bwd[0]))).abs().max() <= 1e-5


def test_alignment_weights_are_a_distribution_and_context_their_mean():
    torch.manual_seed(0)
    cfg = A.Config(m=8, n=12, n_a=10, l=6)
    model = A.build_model(cfg).eval()
    x = torch.randint(A.N_SPECIAL, cfg.vocab, (3, 5))
    with torch.no_grad():
        _, alpha = model(x, torch.zeros(3, 4, dtype=torch.long))  # (B, T_y, T_x)
    assert (
        alpha.shape == (3, 4, 5) and (alpha.sum(-1) - 1).abs().max() <= 1e-6 and (alpha >= 0).all()
    )
