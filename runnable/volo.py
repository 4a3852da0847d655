"""VOLO (Vision Outlooker): outlook attention for fine-level tokens, then self-attention.

Paper: VOLO: Vision Outlooker for Visual Recognition (Yuan et al., 2021) https://arxiv.org/abs/2106.13112
Outlook attention (§3.1) makes the attention weights without queries or keys: a linear layer reads the
token at the centre of each K x K window and outputs K^2 x K^2 weights (per head), softmaxed, which
mix the K^2 value vectors of that window (unfold); every window's K^2 outputs are summed back into
place (fold). Stage 1 stacks Outlookers on fine 8x8-pixel tokens, stage 2 downsamples and applies
ordinary Transformer blocks, and two class-attention layers (from CaiT) pool into a [class] token.
Gate: accuracy of a 1-Outlooker + 1-Transformer VOLO on held-out 8x8 digits >= 0.93.
Run: python -m runnable.volo --preset tiny
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
    stem_hidden: int = 16  # width of the convolutional stem (64)
    stem_stride: int = 1  # (2: the 7x7 first convolution halves the image)
    patch: int = 2  # pixels per stage-1 token side, stem included (8)
    dims: tuple = (32, 64)  # widths of stage 1 (Outlooker) and stage 2 (Transformer): (192, 384)
    heads: tuple = (2, 4)  # (6, 12)
    layers: tuple = (1, 1)  # (4, 14) for VOLO-D1
    post_layers: int = 1  # class-attention layers (2)
    K: int = 3  # outlook window size
    mlp_ratio: float = 2.0  # (3)
    num_classes: int = 10
    epochs: int = 10
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
        stem_hidden=64,
        stem_stride=2,
        patch=8,
        dims=(192, 384),
        heads=(6, 12),
        layers=(4, 14),
        post_layers=2,
        mlp_ratio=3.0,
        num_classes=1000,
    ),  # VOLO-D1
    "gpu": Config(
        image_size=32,
        stem_hidden=64,
        stem_stride=1,
        patch=2,
        dims=(192, 384),
        heads=(6, 12),
        layers=(4, 8),
        post_layers=2,
        mlp_ratio=3.0,
        epochs=800,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


class OutlookAttention(nn.Module):
    """§3.1, Eqs. 2-5 (stride 1): A = softmax(W_A x) per window centre; Y_window = A V_window; fold sums."""

    def __init__(self, C: int, heads: int, K: int):
        super().__init__()
        self.heads, self.K = heads, K
        self.W_v = nn.Linear(C, C, bias=False)  # Eq. 1: V = X W_V
        self.W_A = nn.Linear(C, heads * K**4)  # Eq. 2: weights from the centre token
        self.proj = nn.Linear(C, C)

    def forward(self, x):  # (B, H, W, C)
        B, H, W, C = x.shape
        K, h, KK = self.K, self.heads, self.K**2
        V = F.unfold(self.W_v(x).permute(0, 3, 1, 2), K, padding=K // 2)  # (B, C*K*K, H*W)
        V = V.view(B, h, C // h, KK, H * W).permute(0, 1, 4, 3, 2)  # (B, h, HW, KK, C/h)
        A = self.W_A(x).view(B, H * W, h, KK, KK).transpose(1, 2).softmax(-1)  # (B, h, HW, KK, KK)
        Y = (A @ V).permute(0, 1, 4, 3, 2).reshape(B, C * KK, H * W)  # Eq. 3: weighted average
        Y = F.fold(Y, (H, W), K, padding=K // 2)  # Eqs. 4-5: sum back in place
        return self.proj(Y.permute(0, 2, 3, 1))  # (B, H, W, C)


def mlp(C: int, ratio: float) -> nn.Module:
    return nn.Sequential(nn.Linear(C, int(C * ratio)), nn.GELU(), nn.Linear(int(C * ratio), C))


class Outlooker(nn.Module):
    """Eq. 6: X~ = OutlookAtt(LN(X)) + X;  Z = MLP(LN(X~)) + X~."""

    def __init__(self, C, heads, K, mlp_ratio):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.oa, self.mlp = OutlookAttention(C, heads, K), mlp(C, mlp_ratio)

    def forward(self, x):  # (B, H, W, C)
        x = x + self.oa(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Attention(nn.Module):
    """Multi-head attention; with cls_only, the query is the [class] token alone (class attention)."""

    def __init__(self, C, heads, cls_only=False):
        super().__init__()
        self.heads, self.cls_only = heads, cls_only
        self.W_q, self.W_kv, self.proj = (
            nn.Linear(C, C, bias=False),
            nn.Linear(C, 2 * C, bias=False),
            nn.Linear(C, C),
        )

    def forward(self, x):  # (B, N, C)
        B, N, C = x.shape
        split = lambda t: t.view(B, t.size(1), -1, C // self.heads).transpose(
            1, 2
        )  # (B, h, ., C/h)
        q = split(self.W_q(x[:, :1] if self.cls_only else x))
        k, v = split(self.W_kv(x)).chunk(2, dim=1)  # heads of k first, then of v
        A = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // self.heads), -1)
        return self.proj((A @ v).transpose(1, 2).reshape(B, -1, C))


class TransformerBlock(nn.Module):
    """Stage 2 (and class attention when cls_only): pre-LN attention + MLP with residuals."""

    def __init__(self, C, heads, mlp_ratio, cls_only=False):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.attn, self.mlp, self.cls_only = (
            Attention(C, heads, cls_only),
            mlp(C, mlp_ratio),
            cls_only,
        )

    def forward(self, x):  # (B, N, C)
        if self.cls_only:  # only the [class] token is updated
            c = x[:, :1] + self.attn(self.ln1(x))
            return torch.cat([c + self.mlp(self.ln2(c)), x[:, 1:]], 1)
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class VOLO(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c1, c2 = cfg.dims
        conv = lambda i, o, k, s: [
            nn.Conv2d(i, o, k, s, k // 2, bias=False),
            nn.BatchNorm2d(o),
            nn.ReLU(),
        ]
        first_k = 7 if cfg.stem_stride > 1 else 3
        self.stem = nn.Sequential(
            *conv(cfg.channels, cfg.stem_hidden, first_k, cfg.stem_stride),
            *conv(cfg.stem_hidden, cfg.stem_hidden, 3, 1),
            *conv(cfg.stem_hidden, cfg.stem_hidden, 3, 1),
        )
        p = cfg.patch // cfg.stem_stride
        self.patch_embed = nn.Conv2d(cfg.stem_hidden, c1, p, p)  # (B, c1, H/patch, W/patch)
        self.stage1 = nn.Sequential(
            *[Outlooker(c1, cfg.heads[0], cfg.K, cfg.mlp_ratio) for _ in range(cfg.layers[0])]
        )
        self.downsample = nn.Conv2d(c1, c2, 2, 2)  # 2x2 patch merge between stages
        side = cfg.image_size // cfg.patch // 2
        self.pos = nn.Parameter(torch.randn(1, side * side, c2) * 0.02)  # added after stage 1
        self.stage2 = nn.Sequential(
            *[TransformerBlock(c2, cfg.heads[1], cfg.mlp_ratio) for _ in range(cfg.layers[1])]
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, c2))
        self.post = nn.Sequential(
            *[
                TransformerBlock(c2, cfg.heads[1], cfg.mlp_ratio, cls_only=True)
                for _ in range(cfg.post_layers)
            ]
        )
        self.ln = nn.LayerNorm(c2)
        self.head, self.aux_head = nn.Linear(c2, cfg.num_classes), nn.Linear(c2, cfg.num_classes)

    def forward(self, x):  # (B, C_in, H, W)
        x = self.patch_embed(self.stem(x)).permute(0, 2, 3, 1)  # (B, H1, W1, c1)
        x = self.stage1(x)
        x = (
            self.downsample(x.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2) + self.pos
        )  # (B, N2, c2)
        x = self.stage2(x)
        x = self.ln(
            self.post(torch.cat([self.cls.expand(len(x), -1, -1), x], 1))
        )  # (B, 1 + N2, c2)
        # [class] prediction plus half the best per-token prediction (the token-labeling aux head)
        return self.head(x[:, 0]) + 0.5 * self.aux_head(x[:, 1:]).max(1).values


def build_model(cfg: Config) -> nn.Module:
    return VOLO(cfg)


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
