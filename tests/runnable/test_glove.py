"""GloVe runnable: analogy gate, the weighting f (Eq. 9), zero gradient at an exact factorisation (Eq. 8),
1/d co-occurrence counts, and the paper preset on the meta device."""

import math

import torch

from runnable import glove


def test_tiny_gate_on_held_out_analogies():
    result = glove.train(glove.PRESETS["tiny"])
    assert result["passed"] and result["value"] >= glove.GATE[2], result


def test_weighting_function_eq_9():
    X = torch.tensor([0.5, 1.0, 10.0, 99.0, 100.0, 250.0, 1e6])
    expected = torch.tensor([(x / 100) ** 0.75 if x < 100 else 1.0 for x in X.tolist()])
    assert torch.allclose(glove.f(X), expected)
    assert math.isclose(glove.f(torch.tensor(10.0)).item(), 0.1**0.75, rel_tol=1e-6)
    assert glove.f(torch.tensor(0.0)).item() == 0.0  # f(0) = 0: empty cells add nothing


def test_gradient_is_zero_at_an_exact_factorisation():
    torch.manual_seed(0)
    model = glove.GloVe(glove.Config(d=6, vocab=9))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    logX = model.W @ model.W_tilde.T + model.b[:, None] + model.b_tilde[None]  # (V, V)
    i, j = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    X_ij = logX.detach().exp().flatten()
    loss = model(i.flatten(), j.flatten(), X_ij)
    loss.backward()
    assert loss.item() < 1e-8
    assert max(p.grad.abs().max().item() for p in model.parameters()) < 1e-5
    model.zero_grad()
    model(i.flatten(), j.flatten(), X_ij * 2).backward()  # off the factorisation: non-zero
    assert model.b.grad.abs().max() > 1e-3


def test_cooccurrence_counts_one_over_distance():
    sents = torch.tensor([[0, 1, 2, 3]])
    X = glove.cooccurrence(sents, 4, window=2)
    assert X[0, 1] == 1.0 and X[0, 2] == 0.5 and X[0, 3] == 0.0  # d = 1, 2 and beyond the window
    assert torch.equal(X, X.T)


def test_paper_preset_on_meta():
    cfg = glove.PRESETS["paper"]
    assert (cfg.d, cfg.vocab, cfg.window, cfg.x_max, cfg.alpha, cfg.lr) == (
        300,
        400_000,
        10,
        100.0,
        0.75,
        0.05,
    )
    with torch.device("meta"):
        model = glove.build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == 2 * 400_000 * (300 + 1)
