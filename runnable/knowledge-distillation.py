"""Knowledge distillation: soft targets from a teacher train a small student.

Paper: Distilling the Knowledge in a Neural Network (Hinton et al., 2015) https://arxiv.org/abs/1503.02531
A trained teacher's softmax at a high temperature T, q_i = exp(z_i/T) / sum_j exp(z_j/T) (Eq. 1), says
how similar each example is to every class; a student trained to match these soft targets gets much
more information per example than a one-hot label. The loss mixes the soft term, scaled by T^2 so its
gradients keep their size as T changes (§2.1), with the usual cross-entropy on the hard labels (§2).
Here (§5, "soft targets as regularizers"): scikit-learn's digits, a teacher trained on the full
training split, and students that see only a few labelled images, with and without soft targets.
Gate: distilled student's held-out accuracy minus the same student trained on hard labels alone >= 0.05.
Run: kb run knowledge-distillation
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

GATE = ("distilled-minus-plain", ">=", 0.05)


@dataclass
class Config:
    image_size: int = 8  # digits are 8x8; 28 upsamples them to MNIST's 784 inputs
    teacher_hidden: int = 256  # §3: 2 x 1200 ReLU units (with dropout) on MNIST
    student_hidden: int = 32  # §3: 2 x 800
    teacher_dropout: float = 0.2
    T: float = 4.0  # temperature of the soft targets (Eq. 1)
    alpha: float = 0.9  # weight of the soft term; 1 - alpha on the hard labels (§2)
    n_labelled: int = 40  # images in the students' transfer set (a few per class)
    n_subsets: int = 3  # repeat with different transfer sets and average
    teacher_steps: int = 300
    student_steps: int = 300
    lr: float = 3e-3
    test_size: int = 500
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        image_size=28, teacher_hidden=1200, student_hidden=800, teacher_dropout=0.5, T=20.0
    ),
    "gpu": Config(
        image_size=28,
        teacher_hidden=1200,
        student_hidden=800,
        teacher_dropout=0.5,
        T=8.0,
        n_subsets=20,
        teacher_steps=3000,
        student_steps=2000,
        n_labelled=100,
        amp_bf16=True,
    ),
}


def mlp(d_in: int, hidden: int, dropout: float = 0.0) -> nn.Sequential:
    """Two hidden layers of rectified linear units, as in the MNIST nets of §3."""
    return nn.Sequential(
        nn.Linear(d_in, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    )


def build_model(cfg: Config) -> nn.Module:
    d_in = cfg.image_size**2
    return nn.ModuleDict(
        {
            "teacher": mlp(d_in, cfg.teacher_hidden, cfg.teacher_dropout),
            "student": mlp(d_in, cfg.student_hidden),
        }
    )


def soft_targets(z: torch.Tensor, T: float) -> torch.Tensor:
    """Eq. 1: q_i = exp(z_i / T) / sum_j exp(z_j / T)."""
    return torch.softmax(z / T, dim=-1)


def kd_loss(z_s, z_t, T: float):
    """T^2 * KL(softmax(z_t/T) || softmax(z_s/T)), averaged over the batch. Same gradient as the
    cross-entropy with soft targets (they differ by the teacher's entropy, a constant); T^2 from §2.1."""
    q = soft_targets(z_t, T)  # (B, 10) teacher, fixed
    log_p = F.log_softmax(z_s / T, dim=-1)  # (B, 10) student at the same T
    return T * T * (q * (q.clamp_min(1e-30).log() - log_p)).sum(-1).mean()


def distillation_loss(z_s, z_t, y, T: float, alpha: float):
    """§2: weighted average of the soft objective (at temperature T) and the hard one (at T = 1)."""
    return alpha * kd_loss(z_s, z_t, T) + (1 - alpha) * F.cross_entropy(z_s, y)


def load_data(cfg: Config, g: torch.Generator):
    digits = load_digits()
    X = (
        torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    )  # (1797, 1, 8, 8) in [0, 1]
    if cfg.image_size != 8:
        X = F.interpolate(X, size=cfg.image_size, mode="bilinear", align_corners=False)
    X, y = X.flatten(1), torch.tensor(digits.target)
    perm = torch.randperm(len(y), generator=g)
    test, rest = perm[: cfg.test_size], perm[cfg.test_size :]
    return X[rest], y[rest], X[test], y[test]  # the test digits are never trained on


def fit(net, X, loss_fn, steps: int, lr: float, amp: dict):
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):  # full batch: the sets are small
        with torch.autocast(**amp):
            z = net(X)
        loss = loss_fn(z.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(net, X, y) -> float:
    return (net(X).argmax(-1) == y).float().mean().item()


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    start = time.perf_counter()
    X, y, X_test, y_test = (t.to(device) for t in load_data(cfg, g))
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    teacher = build_model(cfg)["teacher"].to(device)
    fit(
        teacher, X, lambda z: F.cross_entropy(z, y), cfg.teacher_steps, cfg.lr, amp
    )  # all the labels
    with torch.no_grad():
        z_t_all = teacher(X)  # (N, 10) teacher logits, dropout off
    plain, distilled = [], []
    for s in range(cfg.n_subsets):
        per_class = [torch.nonzero(y == c).flatten() for c in range(10)]
        idx = torch.cat(
            [
                p[torch.randperm(len(p), generator=g)[: cfg.n_labelled // 10].to(p.device)]
                for p in per_class
            ]
        )  # a few labelled images per class
        X_s, y_s, z_t = X[idx], y[idx], z_t_all[idx]
        torch.manual_seed(cfg.seed + 1 + s)
        init = build_model(cfg)["student"].to(device)  # the same initial student for both
        student_plain, student_kd = init, build_model(cfg)["student"].to(device)
        student_kd.load_state_dict(init.state_dict())
        fit(
            student_plain,
            X_s,
            lambda z, y_s=y_s: F.cross_entropy(z, y_s),
            cfg.student_steps,
            cfg.lr,
            amp,
        )
        fit(
            student_kd,
            X_s,
            lambda z, z_t=z_t, y_s=y_s: distillation_loss(z, z_t, y_s, cfg.T, cfg.alpha),
            cfg.student_steps,
            cfg.lr,
            amp,
        )
        plain.append(accuracy(student_plain, X_test, y_test))
        distilled.append(accuracy(student_kd, X_test, y_test))
    mean = lambda v: sum(v) / len(v)
    value = mean(distilled) - mean(plain)
    seconds = time.perf_counter() - start
    n_images = len(X) * cfg.teacher_steps + cfg.n_subsets * 2 * cfg.n_labelled * cfg.student_steps
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "teacher_accuracy": accuracy(teacher, X_test, y_test),
        "plain_accuracy": mean(plain),
        "distilled_accuracy": mean(distilled),
        "params": sum(p.numel() for p in init.parameters()),
        "seconds": seconds,
        "images_per_s": n_images / seconds,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
