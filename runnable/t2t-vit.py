"""Tokens-to-Token ViT (T2T-ViT): tokenise progressively with overlapping soft splits.

Paper: Tokens-to-Token ViT: Training Vision Transformers from Scratch on ImageNet (Yuan et al., 2021) https://arxiv.org/abs/2101.11986
Instead of ViT's one hard cut into patches, the T2T module (§3.1) alternates two steps:
re-structurization (a small Transformer layer T' = MLP(MSA(T)), then the tokens are reshaped back
into an image-like grid) and soft split (overlapping k x k windows, each concatenated into one
token, like nn.Unfold). Neighbouring tokens merge, so local structure enters the tokens and the
sequence gets shorter. A deep-narrow ViT backbone (§3.2) then classifies from the [class] token.
Gate: accuracy of a T2T module + 2-layer backbone on held-out 8x8 digits >= 0.93.
Run: kb run t2t-vit
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("accuracy", ">=", 0.93)


@dataclass
class Config:
    image_size: int = 8  # 224 in the paper
    channels: int = 1
    kernels: tuple = (3, 3)  # soft split k per step: (7, 3, 3) in the paper
    strides: tuple = (1, 2)  # s: (4, 2, 2)
    paddings: tuple = (1, 1)  # p: (2, 1, 1)
    token_dim: int = 16  # width of the T2T transformer layers (64)
    D: int = 64  # backbone hidden size (384 for T2T-ViT-14)
    depth: int = 2  # backbone layers (14)
    heads: int = 4  # (6)
    mlp_ratio: float = 2.0  # (3)
    num_classes: int = 10
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    test_size: int = 500
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        image_size=224,
        channels=3,
        kernels=(7, 3, 3),
        strides=(4, 2, 2),
        paddings=(2, 1, 1),
        token_dim=64,
        D=384,
        depth=14,
        heads=6,
        mlp_ratio=3.0,
        num_classes=1000,
    ),  # T2T-ViT_t-14
    "gpu": Config(
        image_size=32,
        kernels=(7, 3, 3),
        strides=(2, 2, 1),
        paddings=(3, 1, 1),
        token_dim=64,
        D=384,
        depth=8,
        heads=6,
        mlp_ratio=3.0,
        epochs=800,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


def soft_split(x: torch.Tensor, k: int, s: int, p: int) -> torch.Tensor:
    """§3.1 Eq. 3: cut (B, C, H, W) into overlapping k x k patches (stride s, zero padding p) and
    concatenate each patch into one token: (B, L, C*k*k), L = H_o * W_o, H_o = (H + 2p - k) // s + 1."""
    B, C, H, W = x.shape
    H_o, W_o = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    x = F.pad(x, (p, p, p, p))
    views = [
        x[:, :, i : i + s * (H_o - 1) + 1 : s, j : j + s * (W_o - 1) + 1 : s]
        for i in range(k)
        for j in range(k)
    ]
    T = torch.stack(views, 2)  # (B, C, k*k, H_o, W_o)
    return T.reshape(B, C * k * k, H_o * W_o).transpose(
        1, 2
    )  # (B, L, C*k*k), channel-major like unfold


def restructurize(T: torch.Tensor) -> torch.Tensor:
    """§3.1 Eq. 2: I = Reshape(T'): tokens (B, L, C) back to a grid (B, C, sqrt(L), sqrt(L))."""
    B, L, C = T.shape
    side = math.isqrt(L)
    return T.transpose(1, 2).reshape(B, C, side, side)


class Attention(nn.Module):
    """Multi-head self-attention; d_in -> d_out (the T2T layers shrink the width)."""

    def __init__(self, d_in: int, d_out: int, heads: int):
        super().__init__()
        self.heads, self.d_out = heads, d_out
        self.W_qkv = nn.Linear(d_in, 3 * d_out, bias=False)
        self.W_o = nn.Linear(d_out, d_out)

    def forward(self, x):  # (B, L, d_in)
        B, L, _ = x.shape
        q, k, v = (
            self.W_qkv(x).view(B, L, 3, self.heads, self.d_out // self.heads).permute(2, 0, 3, 1, 4)
        )
        A = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), -1)  # (B, h, L, L)
        out = self.W_o((A @ v).transpose(1, 2).reshape(B, L, self.d_out))  # (B, L, d_out)
        return out, v.transpose(1, 2).reshape(B, L, self.d_out)


class Block(nn.Module):
    """Pre-LN Transformer layer. When the width changes (T2T layer, Eq. 1: T' = MLP(MSA(T))), the
    attention's residual path carries V instead of the input, whose width no longer matches."""

    def __init__(self, d_in: int, d_out: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_in), nn.LayerNorm(d_out)
        self.msa = Attention(d_in, d_out, heads)
        hidden = int(d_out * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d_out, hidden), nn.GELU(), nn.Linear(hidden, d_out))
        self.same_width = d_in == d_out

    def forward(self, x):  # (B, L, d_in)
        out, v = self.msa(self.ln1(x))
        x = (x if self.same_width else v) + out  # (B, L, d_out)
        return x + self.mlp(self.ln2(x))


def sinusoid(n: int, D: int) -> torch.Tensor:
    """Fixed sinusoidal position encoding (the backbone's PE)."""
    pos, i = (
        torch.arange(n, dtype=torch.float32)[:, None],
        torch.arange(0, D, 2, dtype=torch.float32),
    )
    pe = torch.zeros(n, D)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos / 10000 ** (i / D)), torch.cos(pos / 10000 ** (i / D))
    return pe


class T2TViT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg, ks = cfg, cfg.kernels
        # T2T module: soft split 0, then (T2T transformer, reshape, soft split) for each later step
        widths = [cfg.channels * ks[0] ** 2] + [cfg.token_dim * k**2 for k in ks[1:]]
        self.t2t = nn.ModuleList(
            Block(widths[i], cfg.token_dim, 1, 1.0) for i in range(len(ks) - 1)
        )
        self.project = nn.Linear(widths[-1], cfg.D)  # fixed-length tokens T_f
        side = cfg.image_size
        for k, s, p in zip(cfg.kernels, cfg.strides, cfg.paddings):
            side = (side + 2 * p - k) // s + 1
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.D))
        self.register_buffer("pe", sinusoid(side * side + 1, cfg.D)[None], persistent=False)
        self.blocks = nn.ModuleList(
            Block(cfg.D, cfg.D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.ln = nn.LayerNorm(cfg.D)
        self.head = nn.Linear(cfg.D, cfg.num_classes)

    def tokens(self, x):  # (B, C, H, W) -> (B, L_f, D)
        c = self.cfg
        T = soft_split(x, c.kernels[0], c.strides[0], c.paddings[0])  # T_0
        for layer, k, s, p in zip(self.t2t, c.kernels[1:], c.strides[1:], c.paddings[1:]):
            T = soft_split(
                restructurize(layer(T)), k, s, p
            )  # Eqs. 1-3: T_i -> T'_i -> I_i -> T_{i+1}
        return self.project(T)

    def forward(self, x):
        T = self.tokens(x)
        z = torch.cat([self.cls.expand(len(T), -1, -1), T], 1) + self.pe  # (B, L_f + 1, D)
        for block in self.blocks:
            z = block(z)
        return self.head(self.ln(z[:, 0]))


def build_model(cfg: Config) -> nn.Module:
    return T2TViT(cfg)


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
