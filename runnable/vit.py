"""Vision Transformer (ViT): an image is a sequence of patch tokens.

Paper: An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale (Dosovitskiy et al., 2021) https://arxiv.org/abs/2010.11929
Cut the image into P x P patches, flatten each, map it linearly to D dimensions, prepend a learned
[class] token and add learned 1-D position embeddings (Eq. 1). A standard pre-LN Transformer
encoder (Eqs. 2-3) reads the sequence; LayerNorm of the final [class] state feeds the classifier
head (Eq. 4). No convolution and almost no image-specific inductive bias beyond the patching.
Gate: accuracy of a 2-layer ViT on 2x2-pixel patches of held-out 8x8 digits >= 0.90.
Run: python -m runnable.vit --preset tiny
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
    patch: int = 2  # P (16 for ViT-B/16)
    channels: int = 1
    D: int = 64  # hidden size (768 for ViT-Base)
    layers: int = 2  # L (12)
    heads: int = 4  # k (12); D_h = D / k
    mlp: int = 128  # MLP size (3072)
    num_classes: int = 10
    dropout: float = 0.0
    epochs: int = 16
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
        patch=16,
        channels=3,
        D=768,
        layers=12,
        heads=12,
        mlp=3072,
        num_classes=1000,
        dropout=0.1,
    ),  # ViT-B/16, Table 1: 86M
    "gpu": Config(
        image_size=32,
        patch=4,
        D=384,
        layers=6,
        heads=6,
        mlp=1536,
        epochs=1000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),  # digits upsampled to 32x32
}


class MultiHeadSelfAttention(nn.Module):
    """Eqs. 5-8 (Appendix A): [q, k, v] = z U_qkv; A = softmax(q k^T / sqrt(D_h)); MSA = [SA_1..SA_k] U_msa."""

    def __init__(self, D: int, heads: int):
        super().__init__()
        self.heads, self.D_h = heads, D // heads
        self.U_qkv = nn.Linear(D, 3 * D)
        self.U_msa = nn.Linear(D, D)

    def forward(self, z):  # (B, N, D)
        B, N, D = z.shape
        q, k, v = (
            self.U_qkv(z).view(B, N, 3, self.heads, self.D_h).permute(2, 0, 3, 1, 4)
        )  # (B, k, N, D_h) x3
        A = torch.softmax(
            q @ k.transpose(-2, -1) / math.sqrt(self.D_h), dim=-1
        )  # (B, k, N, N) Eq. 6
        SA = A @ v  # (B, k, N, D_h) Eq. 7
        return self.U_msa(SA.transpose(1, 2).reshape(B, N, D))  # (B, N, D) Eq. 8


class Block(nn.Module):
    """Eqs. 2-3: z' = MSA(LN(z)) + z;  z = MLP(LN(z')) + z'  (LayerNorm before every block)."""

    def __init__(self, D: int, heads: int, mlp: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D, eps=1e-6), nn.LayerNorm(D, eps=1e-6)
        self.msa = MultiHeadSelfAttention(D, heads)
        self.fc1, self.fc2 = (
            nn.Linear(D, mlp),
            nn.Linear(mlp, D),
        )  # MLP: two layers with a GELU (§3.1)
        self.drop = nn.Dropout(dropout)

    def forward(self, z):  # (B, N, D)
        z = z + self.drop(self.msa(self.ln1(z)))  # Eq. 2
        return z + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.ln2(z))))))  # Eq. 3


def patchify(x: torch.Tensor, P: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, P*P*C), N = HW / P^2, patches in raster order (§3.1)."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 3, 5, 1)  # (B, H/P, W/P, P, P, C)
    return x.reshape(B, (H // P) * (W // P), P * P * C)


class ViT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.P, N = cfg.patch, (cfg.image_size // cfg.patch) ** 2
        self.E = nn.Linear(cfg.patch**2 * cfg.channels, cfg.D)  # patch embedding E (Eq. 1)
        self.x_class = nn.Parameter(torch.zeros(1, 1, cfg.D))  # learnable [class] token z_0^0
        self.E_pos = nn.Parameter(
            torch.randn(1, N + 1, cfg.D) * 0.02
        )  # learned 1-D position embeddings
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(cfg.D, cfg.heads, cfg.mlp, cfg.dropout) for _ in range(cfg.layers)
        )
        self.ln = nn.LayerNorm(cfg.D, eps=1e-6)
        self.head = nn.Linear(cfg.D, cfg.num_classes)  # fine-tuning head: one linear layer

    def forward(self, x):  # (B, C, H, W)
        z = self.E(patchify(x, self.P))  # (B, N, D)
        z = torch.cat([self.x_class.expand(len(z), -1, -1), z], 1) + self.E_pos  # (B, N+1, D) Eq. 1
        z = self.drop(z)
        for block in self.blocks:
            z = block(z)
        return self.head(self.ln(z[:, 0]))  # Eq. 4: y = LN(z_L^0)


def build_model(cfg: Config) -> nn.Module:
    return ViT(cfg)


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
