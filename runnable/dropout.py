"""Dropout: training a thinned network at every step to prevent overfitting.

Paper: Dropout: A Simple Way to Prevent Neural Networks from Overfitting (Srivastava et al., 2014) https://jmlr.org/papers/v15/srivastava14a.html
Each training case sees a random "thinned" net: every unit is kept with probability p and
silenced otherwise (§4, r ~ Bernoulli(p)), so hidden units cannot rely on particular partners.
At test time the full net is used with outgoing weights scaled by p, a cheap approximation to
averaging the exponentially many thinned nets (§2, Fig. 2). Here the equivalent "inverted" form
divides kept activations by p while training, so the test-time net is used unchanged.
Tiny: 200 training digits, 40 % of their labels redrawn at random, which a plain MLP memorises.
Gate: held-out accuracy of the dropout MLP minus that of the same MLP (same init, same data)
trained without dropout, mean over 3 seeds/splits, >= 0.03.
Run: python -m runnable.dropout --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("dropout-minus-plain", ">=", 0.03)


@dataclass
class Config:
    in_features: int = 64  # 8x8 digits (paper: 784 MNIST pixels)
    hidden: str = "256,256"  # hidden layer widths (paper, Table 2: e.g. 2 layers of 1024-8192)
    num_classes: int = 10
    p_input: float = 0.8  # §A.4: retain probability for input units
    p_hidden: float = 0.5  # §A.4: retain probability for hidden units
    max_norm: float = 0.0  # §5.1: ||w||_2 <= c for each unit's incoming weights (0 = off)
    train_size: int = 200  # small training set, so the plain net overfits
    test_size: int = 800
    label_noise: float = 0.4  # fraction of training labels redrawn at random (memorisation bait)
    noise_features: int = 0  # extra pure-noise input dimensions
    epochs: int = 150
    batch_size: int = 200  # full batch
    lr: float = 0.1  # SGD with momentum (§A.2)
    momentum: float = 0.9
    repeats: int = 3  # seeds averaged in the gate
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    # §6.1 / Table 2: MNIST net 784-1024-1024-2048-10 with dropout, ReLU, max-norm
    "paper": Config(
        in_features=784,
        hidden="1024,1024,2048",
        max_norm=3.5,
        train_size=60000,
        test_size=10000,
        label_noise=0.0,
        epochs=300,
        batch_size=100,
        lr=0.1,
        momentum=0.95,
    ),
    "gpu": Config(
        hidden="4096,4096", max_norm=3.5, train_size=500, epochs=1000, batch_size=100, repeats=5
    ),
}


class Dropout(nn.Module):
    """§4: r_j ~ Bernoulli(p), y~ = r * y. Inverted scaling 1/p in training makes E[y~] = y,
    which is the same net as scaling the weights by p at test time (§10's "multiply by p")."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p  # probability of KEEPING a unit

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # (B, units)
        if not self.training or self.p >= 1.0:
            return y  # test time: the whole net
        r = torch.bernoulli(torch.full_like(y, self.p))  # (B, units) r_j ~ Bernoulli(p)
        return y * r / self.p


class MLP(nn.Module):
    def __init__(self, cfg: Config, use_dropout: bool = True):
        super().__init__()
        widths = [cfg.in_features + cfg.noise_features] + [int(w) for w in cfg.hidden.split(",")]
        keep = lambda p: p if use_dropout else 1.0
        layers: list[nn.Module] = [Dropout(keep(cfg.p_input))]  # dropout on the inputs too (§4)
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU(), Dropout(keep(cfg.p_hidden))]
        layers.append(nn.Linear(widths[-1], cfg.num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (B, in_features)
        return self.net(x)  # (B, classes)

    @torch.no_grad()
    def apply_max_norm(self, c: float):
        """§5.1: project each hidden unit's incoming weight vector onto the ball of radius c."""
        for m in self.net:
            if isinstance(m, nn.Linear):
                norms = m.weight.norm(dim=1, keepdim=True)  # (n_out, 1)
                m.weight.mul_(norms.clamp(max=c) / norms.clamp(min=1e-12))


def build_model(cfg: Config) -> nn.Module:
    return MLP(cfg)


def load_data(cfg: Config, split_seed: int):
    """Digits as 64 standardised pixels; a small random training set and a held-out test set."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0  # (N, 64)
    x = (x - x.mean(0)) / (x.std(0) + 0.1)
    g = torch.Generator().manual_seed(split_seed)
    x = torch.cat([x, torch.randn(len(x), cfg.noise_features, generator=g)], 1)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=g)
    te, tr = perm[: cfg.test_size], perm[cfg.test_size : cfg.test_size + cfg.train_size]
    y_tr = y[tr].clone()
    flip = torch.rand(len(tr), generator=g) < cfg.label_noise
    y_tr[flip] = torch.randint(0, cfg.num_classes, (int(flip.sum()),), generator=g)
    return x[tr], y_tr, x[te], y[te]


def fit(cfg: Config, use_dropout: bool, seed: int, data, device: str) -> float:
    """Train one net from a seeded init; return held-out accuracy."""
    x_tr, y_tr, x_te, y_te = (t.to(device) for t in data)
    torch.manual_seed(seed)
    model = MLP(cfg, use_dropout).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    g = torch.Generator().manual_seed(seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                logits = model(x_tr[idx.to(device)])
            loss = F.cross_entropy(logits.float(), y_tr[idx.to(device)])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if cfg.max_norm:
                model.apply_max_norm(cfg.max_norm)
    model.eval()
    with torch.no_grad():
        return (model(x_te).argmax(1) == y_te).float().mean().item()


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.time()
    accs = {True: [], False: []}
    for k in range(cfg.repeats):
        data = load_data(cfg, split_seed=cfg.seed + k)  # a different small training set each time
        for use_dropout in (True, False):
            accs[use_dropout].append(fit(cfg, use_dropout, cfg.seed + k, data, device))
    with_dropout, plain = (sum(accs[b]) / cfg.repeats for b in (True, False))
    gap = with_dropout - plain
    seconds = time.time() - t0
    images = 2 * cfg.repeats * cfg.epochs * cfg.train_size
    with torch.device("meta"):
        params = sum(p.numel() for p in build_model(cfg).parameters())
    return {
        "metric": GATE[0],
        "value": gap,
        "passed": gap >= GATE[2],
        "params": params,
        "seconds": round(seconds, 2),
        "dropout_accuracy": with_dropout,
        "plain_accuracy": plain,
        "dropout_accuracies": accs[True],
        "plain_accuracies": accs[False],
        "images_per_s": images / seconds,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
