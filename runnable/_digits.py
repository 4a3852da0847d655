"""Shared by the image-classification runnables (lenet, alexnet, nin, googlenet, resnet, densenet).

Not any paper's contribution: scikit-learn's 8x8 digits as small images with a fixed held-out
split, digits placed at random positions on a larger canvas (so that a pixel's meaning changes
from image to image and a nearest-neighbour lookup stops working), accuracy, and the shell of
a training loop that scores the held-out set after every epoch for the page's chart.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def load_digits(size: int = 8, test_size: int = 500):
    """Digits in [0, 1] at size x size (bilinear from 8x8): x_tr, y_tr, x_te, y_te.

    The held-out split is fixed (drawn with seed 0), whatever the training seed.
    """
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[:test_size], perm[test_size:]
    return x[tr], y[tr], x[te], y[te]


def place(x: torch.Tensor, canvas: int, seed: int, max_shift: int | None = None) -> torch.Tensor:
    """Put each (N, 1, s, s) image on a (N, 1, canvas, canvas) background of zeros.

    The offset is drawn per image: uniformly over the whole free margin, or at most
    `max_shift` pixels from the centre. The same seed gives the same placements.
    """
    n, _, s, _ = x.shape
    free = canvas - s
    lo, hi = (0, free) if max_shift is None else (free // 2 - max_shift, free // 2 + max_shift)
    off = torch.randint(lo, hi + 1, (n, 2), generator=torch.Generator().manual_seed(seed))
    out = x.new_zeros(n, 1, canvas, canvas)
    for i, (dy, dx) in enumerate(off.tolist()):
        out[i, :, dy : dy + s, dx : dx + s] = x[i]
    return out


def load_shifted(
    size: int,
    canvas: int,
    train_shift: int,
    test_shift: int,
    test_size: int = 500,
    channels: int = 1,
):
    """Digits at size x size, each at its own random offset on the canvas: training digits at
    most `train_shift` pixels off centre, held-out ones up to `test_shift`; zero mean, unit
    variance; repeated over `channels`. Returns x_tr, y_tr, x_te, y_te."""
    x_tr, y_tr, x_te, y_te = load_digits(size, test_size)
    x_tr = place(x_tr, canvas, seed=1, max_shift=train_shift)  # (N, 1, canvas, canvas)
    x_te = place(x_te, canvas, seed=2, max_shift=test_shift)
    x_tr, x_te = standardise(x_tr, x_te, like=x_tr)
    x_tr, x_te = (x.expand(-1, channels, -1, -1).contiguous() for x in (x_tr, x_te))
    return x_tr, y_tr, x_te, y_te


def place_scaled(sizes, canvas: int, test_size: int = 500):
    """Digits drawn at a random size from `sizes` and a random position on the canvas, each
    its own; zero mean, unit variance: x_tr, y_tr, x_te, y_te (same split as load_digits)."""
    sizes = list(sizes)
    by_size = {s: load_digits(s, test_size) for s in sizes}
    x_tr, y_tr, x_te, y_te = by_size[sizes[0]]
    out = []
    for split, seed in ((0, 1), (2, 2)):
        n = len(by_size[sizes[0]][split])
        pick = torch.randint(len(sizes), (n,), generator=torch.Generator().manual_seed(seed))
        x = torch.zeros(n, 1, canvas, canvas)
        for k, s in enumerate(sizes):
            idx = (pick == k).nonzero().flatten()
            x[idx] = place(by_size[s][split][idx], canvas, seed=seed * 100 + s)
        out.append(x)
    x_tr, x_te = standardise(*out, like=out[0])
    return x_tr, y_tr, x_te, y_te


def standardise(*xs: torch.Tensor, like: torch.Tensor) -> list[torch.Tensor]:
    """Zero mean, unit variance, with the statistics of `like` (the training images)."""
    mean, std = like.mean(), like.std()
    return [(x - mean) / std for x in xs]


@torch.no_grad()
def accuracy(model: nn.Module, x, y, device="cpu", batch=500, pick=torch.argmax) -> float:
    """Share of examples whose top score is the label (`pick=torch.argmin` for distances)."""
    model.eval()
    hits = sum(
        (pick(model(x[i : i + batch].to(device)), 1).cpu() == y[i : i + batch]).sum().item()
        for i in range(0, len(y), batch)
    )
    return hits / len(y)


def fit(
    model: nn.Module,
    data,
    loss_fn: Callable,
    opt,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    device="cpu",
    sched=None,
    step_sched=False,
    augment=None,
    score: Callable | None = None,
    channels_last=False,
) -> list[float]:
    """Train for `epochs` over shuffled mini-batches and return the held-out score after each.

    `loss_fn(model, xb, yb)` gives the loss; `augment(xb, g)` changes a training batch;
    `sched` steps once per batch if `step_sched`, else once per epoch. The shuffling and the
    augmentation each draw from their own generator seeded from `seed`, so two models trained
    with the same seed see the same batches in the same order, augmented or not.
    """
    x_tr, y_tr, x_te, y_te = data
    score = score or (lambda m: accuracy(m, x_te, y_te, device))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g, g_aug = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    cuda, history = str(device).startswith("cuda"), []
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(batch_size):
            xb = augment(x_tr[idx], g_aug) if augment else x_tr[idx]
            xb, yb = xb.to(device, memory_format=fmt), y_tr[idx].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = loss_fn(model, xb, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None and step_sched:
                sched.step()
        if sched is not None and not step_sched:
            sched.step()
        history.append(score(model))
    return history


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
