"""MLP-Mixer: vision with only MLPs, alternating token mixing and channel mixing.

Paper: MLP-Mixer: An all-MLP Architecture for Vision (Tolstikhin et al., 2021) https://arxiv.org/abs/2105.01601
The image becomes a table X of S patches x C channels (a per-patch linear embedding, as in ViT).
Each Mixer layer applies a token-mixing MLP to every column of X (it mixes the S patches, weights
shared across channels): U = X + W_2 GELU(W_1 LN(X)^T), then a channel-mixing MLP to every row
(weights shared across patches): Y = U + W_4 GELU(W_3 LN(U)) (Eq. 1). No attention, no position
embeddings: the token MLP itself knows where each patch is. Global average pooling + linear head.
Gate: accuracy of a 2-layer Mixer on 2x2-pixel patches of held-out 8x8 digits >= 0.90.
Run: kb run mlp-mixer
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("accuracy", ">=", 0.90)


@dataclass
class Config:
    image_size: int = 8  # 224 in the paper
    patch: int = 2  # P (16 for Mixer-B/16)
    channels: int = 1
    C: int = 64  # hidden size C (768 for Mixer-B)
    D_S: int = 64  # token-mixing MLP width (384)
    D_C: int = 128  # channel-mixing MLP width (3072)
    layers: int = 2  # number of Mixer layers (12)
    num_classes: int = 10
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    test_size: int = 500
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        image_size=224, patch=16, channels=3, C=768, D_S=384, D_C=3072, layers=12, num_classes=1000
    ),  # Mixer-B/16, Table 1: 59M
    "gpu": Config(
        image_size=32,
        patch=4,
        C=512,
        D_S=256,
        D_C=2048,
        layers=8,
        epochs=1000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),  # digits upsampled to 32x32
}


class MlpBlock(nn.Module):
    """Two fully connected layers with a GELU in between (§2)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class MixerLayer(nn.Module):
    """Eq. 1: token mixing across patches (columns of X), then channel mixing within each patch (rows)."""

    def __init__(self, S: int, C: int, D_S: int, D_C: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.token_mlp = MlpBlock(S, D_S)  # W_1 (D_S x S), W_2 (S x D_S)
        self.channel_mlp = MlpBlock(C, D_C)  # W_3 (D_C x C), W_4 (C x D_C)

    def forward(self, X):  # (B, S, C)
        U = X + self.token_mlp(self.ln1(X).transpose(1, 2)).transpose(
            1, 2
        )  # (B, S, C) mixes along S
        return U + self.channel_mlp(self.ln2(U))  # (B, S, C) mixes along C


def patchify(x: torch.Tensor, P: int) -> torch.Tensor:
    """(B, c, H, W) -> (B, S, P*P*c), S = HW / P^2, patches in raster order."""
    B, c, H, W = x.shape
    x = x.reshape(B, c, H // P, P, W // P, P).permute(0, 2, 4, 3, 5, 1)  # (B, H/P, W/P, P, P, c)
    return x.reshape(B, (H // P) * (W // P), P * P * c)


class Mixer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.P, S = cfg.patch, (cfg.image_size // cfg.patch) ** 2
        self.stem = nn.Linear(cfg.patch**2 * cfg.channels, cfg.C)  # per-patch fully connected layer
        self.layers = nn.ModuleList(
            MixerLayer(S, cfg.C, cfg.D_S, cfg.D_C) for _ in range(cfg.layers)
        )
        self.ln = nn.LayerNorm(cfg.C)  # pre-head layer norm
        self.head = nn.Linear(cfg.C, cfg.num_classes)

    def features(self, x):  # (B, c, H, W) -> (B, S, C)
        X = self.stem(patchify(x, self.P))
        for layer in self.layers:
            X = layer(X)
        return self.ln(X)

    def forward(self, x):
        return self.head(self.features(x).mean(1))  # global average pooling, then linear


def build_model(cfg: Config) -> nn.Module:
    return Mixer(cfg)


def load_digits_split(cfg: Config):
    """scikit-learn's 1,797 digits, scaled to [0, 1]; a fixed held-out test set."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    if cfg.image_size != 8:
        x = F.interpolate(
            x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False
        )
    x = (x - 0.3) / 0.4
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[: cfg.test_size], perm[cfg.test_size :]
    return x[tr], y[tr], x[te], y[te]


@torch.no_grad()
def accuracy(model, x, y, device, amp, batch=500):
    model.eval()
    hits = 0
    for i in range(0, len(y), batch):
        with torch.autocast(**amp):
            hits += (
                (model(x[i : i + batch].to(device)).argmax(1).cpu() == y[i : i + batch])
                .sum()
                .item()
            )
    return hits / len(y)


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    x_tr, y_tr, x_te, y_te = load_digits_split(cfg)
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(y_tr) / cfg.batch_size)
    warm = max(1, steps // 10)  # linear warm-up, then cosine decay
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    g, seen, t_train = torch.Generator().manual_seed(cfg.seed), 0, time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            xb, yb = x_tr[idx].to(device), y_tr[idx].to(device)
            with torch.autocast(**amp):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
    train_s = time.perf_counter() - t_train
    acc = accuracy(model, x_te, y_te, device, amp)
    return {
        "metric": GATE[0],
        "value": acc,
        "passed": acc >= GATE[2],
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": time.perf_counter() - t0,
        "images_per_s": seen / train_s,
        "final_loss": loss.item(),
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
