"""Additive attention's worked example (papers/attention.yaml › teaching.worked_example): one
step of the runnable's `RNNsearch.step` over 3 source annotations in 2 dimensions (scores,
softmax weights that sum to 1, the context vector), and the shapes of one step in the `paper`
preset's sizes (built on the meta device)."""

import torch

from ..conftest import runnable, stated_in

A = runnable("attention")
QUERY = torch.tensor([0.5, -0.5])  # W_a s_{i-1}
KEYS = torch.tensor([[1.0, 0.5], [-0.5, 0.0], [0.0, 1.5]])  # U_a h_j
H = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # annotations h_j
V_A = torch.tensor([1.0, 1.0])
stated = stated_in("attention")


def f3(v: float) -> str:
    return f"{v:.3f}"


def test_the_runnables_step_gives_these_weights():
    """Size the model so that s_{i-1} has 1 unit and h_j 2 (n = 1), then set W_a and v_a."""
    model = A.RNNsearch(A.Config(m=2, n=1, n_a=2, l=2, vocab=A.N_SPECIAL + 10))
    with torch.no_grad():
        model.W_a.weight.copy_(QUERY[:, None])  # W_a s with s = 1
        model.v_a.weight.copy_(V_A[None])
        _, _, alpha = model.step(torch.tensor([A.BOS]), torch.ones(1, 1), H[None], KEYS[None])
    e = (torch.tanh(QUERY + KEYS) * V_A).sum(-1)
    assert torch.allclose(alpha[0], torch.softmax(e, 0))
    assert abs(alpha.sum().item() - 1) < 1e-6


def test_scores_weights_and_context():
    t = torch.tanh(QUERY + KEYS)
    e = (t * V_A).sum(-1)
    w = e.exp()
    alpha = w / w.sum()
    c = alpha @ H
    stated(
        "$W_a s_{i-1} = (0.5, -0.5)$",
        "$U_a h_1 = (1.0, 0.5)$",
        "$U_a h_2 = (-0.5, 0.0)$",
        "$U_a h_3 = (0.0, 1.5)$",
        "$v_a = (1, 1)$",
        "$h_1 = (1, 0)$",
        "$h_2 = (0, 1)$",
        "$h_3 = (1, 1)$",
    )
    for j in range(3):
        stated(
            f"| {j + 1} | $({f3(t[j, 0])}, {f3(t[j, 1])})$ | {f3(e[j])} | {f3(w[j])} | "
            f"{f3(alpha[j])} |"
        )
    stated(
        f3(w.sum()),
        f"{f3(w[0])} / {f3(w.sum())}",
        rf"c_i = {f3(alpha[0])}\,h_1 + {f3(alpha[1])}\,h_2 + {f3(alpha[2])}\,h_3 = "
        rf"({f3(c[0])}, {f3(c[1])})",
    )


def test_shapes_in_the_papers_sizes():
    cfg = A.PRESETS["paper"]
    assert (cfg.n, cfg.n_a) == (1000, 1000)
    with torch.device("meta"):
        model = A.RNNsearch(cfg)
        h, s = model.encode(torch.zeros(1, 3, dtype=torch.long))
        U_h = model.U_a(h)
        query = model.W_a(s)
        e = model.v_a(torch.tanh(query[:, None] + U_h)).squeeze(-1)
        c = (torch.softmax(e, -1)[:, :, None] * h).sum(1)
    fmt = lambda x: "$(" + ", ".join(map(str, x.shape)) + ")$"
    stated("$n = 1000$", "$n' = 1000$", "$T_x = 3$", fmt(h), fmt(U_h), fmt(query), fmt(e), fmt(c))
    assert fmt(h) == "$(1, 3, 2000)$" and fmt(c) == "$(1, 2000)$"
