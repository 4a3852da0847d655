"""GloVe: global vectors from a weighted least-squares fit to log co-occurrence counts.

Paper: GloVe: Global Vectors for Word Representation (Pennington et al., 2014) https://doi.org/10.3115/v1/D14-1162
Count once, then fit: X_ij sums 1/d over every time word j appears d words from word i (§4.2); the
model asks w_i . w~_j + b_i + b~_j = log X_ij for every non-zero cell, weighted by
f(X_ij) = min(1, (X_ij / x_max)^alpha) so rare pairs count less and frequent ones do not dominate
(Eqs. 8-9). Trained with AdaGrad on shuffled non-zero cells; the word vectors are W + W~ (§4.2).
Gate: 3CosAdd accuracy on held-out analogy questions over a generated corpus with known structure >= 0.9.
Run: python -m runnable.glove --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("analogy-accuracy", ">=", 0.9)


@dataclass
class Config:
    d: int = 32  # vector size (300 in the paper's main runs)
    window: int = 10  # §4.2: ten words to the left and ten to the right
    x_max: float = 100.0  # Eq. 9
    alpha: float = 0.75  # Eq. 9
    lr: float = 0.05  # §4.2: AdaGrad, initial learning rate 0.05
    epochs: int = 25  # passes over the non-zero cells (50 or 100 in §4.2)
    batch_size: int = 512
    n_entities: int = 24  # generated corpus: words (entity, role) with a_e + b_r structure
    n_roles: int = 4
    ctx_per_entity: int = 3
    ctx_per_role: int = 4
    n_noise: int = 40
    beta: float = 3.0  # log-preference of a word (e, r) for the context words of e and of r
    sent_len: int = 8
    n_sents: int = 20000
    n_questions: int = 2000
    vocab: int = 0  # 0: set by the generated corpus; 400000 in the paper (§4.2)
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(d=300, epochs=100, vocab=400_000),  # §4.2: 300-d, 400K words, x_max 100
    "gpu": Config(
        d=128,
        n_entities=300,
        n_roles=6,
        n_noise=3000,
        beta=4.0,
        n_sents=3_000_000,
        epochs=50,
        batch_size=65536,
    ),
}


def f(X, x_max: float = 100.0, alpha: float = 0.75):
    """Eq. 9: (x / x_max)^alpha below x_max, 1 above."""
    return torch.clamp(X / x_max, max=1.0) ** alpha


class GloVe(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        V, d = cfg.vocab or vocab_size(cfg), cfg.d
        self.W = nn.Parameter(torch.empty(V, d).uniform_(-0.5 / d, 0.5 / d))  # word vectors w_i
        self.W_tilde = nn.Parameter(
            torch.empty(V, d).uniform_(-0.5 / d, 0.5 / d)
        )  # context vectors w~_j
        self.b, self.b_tilde = nn.Parameter(torch.zeros(V)), nn.Parameter(torch.zeros(V))

    def forward(self, i, j, X_ij, x_max: float = 100.0, alpha: float = 0.75):
        """Eq. 8 on a batch of non-zero cells: sum f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2."""
        pred = (self.W[i] * self.W_tilde[j]).sum(-1) + self.b[i] + self.b_tilde[j]  # (N,)
        return (f(X_ij, x_max, alpha) * (pred - torch.log(X_ij)) ** 2).sum()

    def vectors(self):
        return self.W + self.W_tilde  # §4.2: W + W~ as the word vectors


def build_model(cfg: Config) -> nn.Module:
    return GloVe(cfg)


def vocab_size(cfg: Config) -> int:
    E, R = cfg.n_entities, cfg.n_roles
    return E * R + E * cfg.ctx_per_entity + R * cfg.ctx_per_role + cfg.n_noise


def make_corpus(cfg: Config, g: torch.Generator) -> torch.Tensor:
    """Each sentence: one word (e, r) and sent_len - 1 context words drawn from a log-linear model,
    p(c | e, r) ~ exp(beta [c is a word of entity e] + beta [c is a word of role r]). Then
    log X_(e,r),c is a sum of an entity part and a role part, and w(e, r) ~ a_e + b_r is the best fit."""
    E, R, n = cfg.n_entities, cfg.n_roles, cfg.n_sents
    ent0, role0 = E * R, E * R + E * cfg.ctx_per_entity
    V = vocab_size(cfg)
    ctx = torch.arange(ent0, V)  # context words: entity, role, noise
    logits = torch.zeros(E, R, V)
    for e in range(E):
        logits[e, :, ent0 + e * cfg.ctx_per_entity : ent0 + (e + 1) * cfg.ctx_per_entity] += (
            cfg.beta
        )
    for r in range(R):
        logits[:, r, role0 + r * cfg.ctx_per_role : role0 + (r + 1) * cfg.ctx_per_role] += cfg.beta
    P = torch.softmax(logits[..., ctx], -1).view(E * R, -1)  # (E R, n_ctx)
    er = torch.randint(E * R, (n,), generator=g)  # the word (e, r) = e * R + r
    words = ctx[torch.multinomial(P[er], cfg.sent_len - 1, replacement=True, generator=g)]
    sents = torch.cat([er[:, None], words], 1)  # (n, sent_len)
    return sents.gather(1, torch.rand(n, cfg.sent_len, generator=g).argsort(1))


def cooccurrence(sents: torch.Tensor, V: int, window: int) -> torch.Tensor:
    """§4.2: X_ij += 1/d for word j at distance d <= window from word i, both directions. (V, V)"""
    X = torch.zeros(V * V, dtype=torch.float64)
    for dist in range(1, min(window, sents.size(1) - 1) + 1):
        a, b = sents[:, :-dist].flatten(), sents[:, dist:].flatten()
        w = torch.full(a.shape, 1.0 / dist, dtype=torch.float64)
        X.index_add_(0, a * V + b, w)
        X.index_add_(0, b * V + a, w)  # symmetric context
    return X.view(V, V).float()


def analogy_questions(cfg: Config, g: torch.Generator) -> torch.Tensor:
    """a:b :: c:d with a = (e1, r1), b = (e1, r2), c = (e2, r1), d = (e2, r2). (n, 4)"""
    E, R, n = cfg.n_entities, cfg.n_roles, cfg.n_questions
    e1, e2 = torch.randint(E, (n,), generator=g), torch.randint(E - 1, (n,), generator=g)
    e2 = e2 + (e2 >= e1).long()
    r1, r2 = torch.randint(R, (n,), generator=g), torch.randint(R - 1, (n,), generator=g)
    r2 = r2 + (r2 >= r1).long()
    return torch.stack([e1 * R + r1, e1 * R + r2, e2 * R + r1, e2 * R + r2], 1)


@torch.no_grad()
def analogy_accuracy(vectors: torch.Tensor, q: torch.Tensor) -> float:
    """b - a + c, nearest word by cosine with the three question words excluded (3CosAdd)."""
    Wn = F.normalize(vectors.float(), dim=1)
    sim = F.normalize(Wn[q[:, 1]] - Wn[q[:, 0]] + Wn[q[:, 2]], dim=1) @ Wn.T  # (n, V)
    sim.scatter_(1, q[:, :3], float("-inf"))
    return (sim.argmax(1) == q[:, 3]).float().mean().item()


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    sents = make_corpus(cfg, g)
    q = analogy_questions(
        cfg, torch.Generator().manual_seed(cfg.seed + 10_000)
    )  # never used in training
    model = build_model(cfg).to(device)
    V = model.W.size(0)
    X = cooccurrence(sents, V, cfg.window)
    i, j = X.nonzero(as_tuple=True)  # only non-zero cells enter Eq. 8
    X_ij = X[i, j]
    i, j, X_ij = i.to(device), j.to(device), X_ij.to(device)
    opt = torch.optim.Adagrad(model.parameters(), lr=cfg.lr)
    start, cells = time.perf_counter(), 0
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(i), generator=g).to(device)  # shuffled non-zero cells
        for k in range(0, len(perm), cfg.batch_size):
            idx = perm[k : k + cfg.batch_size]
            loss = model(i[idx], j[idx], X_ij[idx], cfg.x_max, cfg.alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            cells += len(idx)
    train_s = time.perf_counter() - start
    value = analogy_accuracy(model.vectors().detach(), q.to(device))
    J = model(i, j, X_ij, cfg.x_max, cfg.alpha).item()
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": sum(p.numel() for p in model.parameters()),
        "nonzero_cells": len(i),
        "final_J": J,
        "seconds": time.perf_counter() - start,
        "cells_per_s": cells / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
