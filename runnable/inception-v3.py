"""Inception-v3: factorised convolutions, efficient grid reduction and label smoothing.

Paper: Rethinking the Inception Architecture for Computer Vision (Szegedy et al., 2016) https://arxiv.org/abs/1512.00567
Large filters are factorised: a 5x5 into two 3x3s (§3.1, Fig. 5) and an n x n into a 1 x n
followed by an n x 1 (§3.2, Figs. 6-7), keeping the receptive field for fewer weights and more
non-linearity. Grids shrink with parallel stride-2 convolution and pooling branches (§5, Fig. 10).
Label smoothing (§7) trains against q'(k) = (1 - eps) delta_{k,y} + eps / K instead of one-hot.
Widths are those of the released model (the paper gives module types and grid sizes, Table 1).
Tiny: one module of each kind (Figs. 5, 6 with n=3, 7, both reductions) at 1/8 width on digits.
Gate: held-out accuracy on scikit-learn's digits >= 0.95.
Run: kb run inception-v3
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runnable._digits import load_digits, standardise

GATE = ("accuracy", ">=", 0.95)


@dataclass
class Config:
    image_size: int = 12  # digits upsampled 8 -> 12 (paper: 299x299); grids 12 -> 5 -> 2
    in_channels: int = 1
    num_classes: int = 10
    stem: str = "tiny"  # "paper": Table 1's seven layers 299 -> 35; "tiny": one 3x3 conv
    width: float = 0.125  # multiplier on every width (1 = the released model's widths)
    n_a: int = 1  # Fig. 5 modules on the 35x35 grid (Table 1: 3)
    n_b: int = 1  # Fig. 6 modules on the 17x17 grid (4 + the reduction in Table 1's "5x")
    n_c: int = 1  # Fig. 7 modules on the 8x8 grid (Table 1: 2)
    n: int = 3  # Fig. 6 factorisation 1 x n, n x 1 (§6: n = 7 on the 17x17 grid)
    aux: bool = False  # §7: BN-auxiliary classifier on top of the last 17x17 layer
    eps: float = 0.1  # §7: label smoothing epsilon (u(k) = 1/K)
    dropout: float = 0.2
    epochs: int = 5
    batch_size: int = 64
    lr: float = 3e-3  # Adam here (§8: RMSProp, decay 0.9, eps 1.0, lr 0.045)
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        image_size=299,
        in_channels=3,
        num_classes=1000,
        stem="paper",
        width=1.0,
        n_a=3,
        n_b=4,
        n_c=2,
        n=7,
        aux=True,
        dropout=0.5,
        epochs=100,
        batch_size=32,
        lr=0.045,
    ),
    "gpu": Config(
        image_size=32, width=0.5, n_a=2, n_b=2, n_c=2, n=5, epochs=30, batch_size=256, lr=2e-3
    ),
}


class ConvBN(nn.Sequential):
    """conv -> batch norm -> ReLU, the unit every box of Figs. 5-7 and 10 stands for."""

    def __init__(self, c_in, c_out, k, stride=1, padding=0):
        super().__init__(
            nn.Conv2d(c_in, c_out, k, stride, padding, bias=False),
            nn.BatchNorm2d(c_out, eps=1e-3),
            nn.ReLU(),
        )


def factorised(c_in, c_mid, c_out, n):
    """§3.2: an n x n convolution as 1 x n then n x 1 (same field, 2n instead of n^2 weights)."""
    return nn.Sequential(
        ConvBN(c_in, c_mid, (1, n), padding=(0, n // 2)),
        ConvBN(c_mid, c_out, (n, 1), padding=(n // 2, 0)),
    )


class ModuleA(nn.Module):
    """Fig. 5: the 5x5 branch replaced by two stacked 3x3s (§3.1)."""

    def __init__(self, c_in, w, pool_c):
        super().__init__()
        self.b1 = ConvBN(c_in, w(64), 1)
        self.b3 = nn.Sequential(ConvBN(c_in, w(48), 1), ConvBN(w(48), w(64), 3, padding=1))
        self.b5 = nn.Sequential(
            ConvBN(c_in, w(64), 1),
            ConvBN(w(64), w(96), 3, padding=1),
            ConvBN(w(96), w(96), 3, padding=1),
        )  # 3x3 + 3x3 = one 5x5 field
        self.bp, self.c_out = ConvBN(c_in, pool_c, 1), w(64) + w(64) + w(96) + pool_c

    def forward(self, x):  # (B, C, 35, 35)
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class ModuleB(nn.Module):
    """Fig. 6: n x n convolutions factorised into 1 x n and n x 1 (§3.2), n = 7 on 17x17."""

    def __init__(self, c_in, w, c7, n):
        super().__init__()
        self.b1 = ConvBN(c_in, w(192), 1)
        self.bn = nn.Sequential(ConvBN(c_in, c7, 1), factorised(c7, c7, w(192), n))
        self.bnn = nn.Sequential(
            ConvBN(c_in, c7, 1), factorised(c7, c7, c7, n), factorised(c7, c7, w(192), n)
        )
        self.bp, self.c_out = ConvBN(c_in, w(192), 1), 4 * w(192)

    def forward(self, x):  # (B, 768, 17, 17)
        return torch.cat(
            [self.b1(x), self.bn(x), self.bnn(x), self.bp(F.avg_pool2d(x, 3, 1, 1))], 1
        )


class ModuleC(nn.Module):
    """Fig. 7: expanded filter bank on the coarsest grid, 1x3 and 3x1 side by side."""

    def __init__(self, c_in, w):
        super().__init__()
        self.b1, self.b3 = ConvBN(c_in, w(320), 1), ConvBN(c_in, w(384), 1)
        self.b3_1x3, self.b3_3x1 = (
            ConvBN(w(384), w(384), (1, 3), padding=(0, 1)),
            ConvBN(w(384), w(384), (3, 1), padding=(1, 0)),
        )
        self.b33 = nn.Sequential(ConvBN(c_in, w(448), 1), ConvBN(w(448), w(384), 3, padding=1))
        self.b33_1x3, self.b33_3x1 = (
            ConvBN(w(384), w(384), (1, 3), padding=(0, 1)),
            ConvBN(w(384), w(384), (3, 1), padding=(1, 0)),
        )
        self.bp, self.c_out = ConvBN(c_in, w(192), 1), w(320) + 4 * w(384) + w(192)

    def forward(self, x):  # (B, 1280, 8, 8)
        a, b = self.b3(x), self.b33(x)
        return torch.cat(
            [
                self.b1(x),
                self.b3_1x3(a),
                self.b3_3x1(a),
                self.b33_1x3(b),
                self.b33_3x1(b),
                self.bp(F.avg_pool2d(x, 3, 1, 1)),
            ],
            1,
        )  # (B, 2048, 8, 8)


class Reduction(nn.Module):
    """Fig. 10: stride-2 conv branches in parallel with stride-2 max-pooling, concatenated (§5)."""

    def __init__(self, branches: list[nn.Module], c_in: int, c_branches: int):
        super().__init__()
        self.branches, self.c_out = nn.ModuleList(branches), c_branches + c_in

    def forward(self, x):  # (B, C, H, W) -> (B, C', H/2, W/2)
        return torch.cat([b(x) for b in self.branches] + [F.max_pool2d(x, 3, 2)], 1)


class InceptionV3(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        w = lambda c: max(1, round(c * cfg.width))
        self.stem = (
            ConvBN(cfg.in_channels, w(192), 3, padding=1)
            if cfg.stem != "paper"
            else nn.Sequential(
                ConvBN(cfg.in_channels, 32, 3, 2),
                ConvBN(32, 32, 3),
                ConvBN(32, 64, 3, padding=1),  # 299 -> 149 -> 147
                nn.MaxPool2d(3, 2),
                ConvBN(64, 80, 1),
                ConvBN(80, 192, 3),
                nn.MaxPool2d(3, 2),
            )
        )  # -> 73 -> 71 -> 35
        c, blocks = w(192), []  # 35x35x192 (Table 1 lists 288 here)
        for i in range(cfg.n_a):  # 35x35 grid
            blocks.append(ModuleA(c, w, w(32) if i == 0 else w(64)))
            c = blocks[-1].c_out
        blocks.append(
            Reduction(
                [
                    ConvBN(c, w(384), 3, 2),
                    nn.Sequential(
                        ConvBN(c, w(64), 1),
                        ConvBN(w(64), w(96), 3, padding=1),
                        ConvBN(w(96), w(96), 3, 2),
                    ),
                ],
                c,
                w(384) + w(96),
            )
        )
        c = blocks[-1].c_out  # 35 -> 17, 768 maps
        for i in range(cfg.n_b):  # 17x17 grid, c7 = 128, 160, 160, 192
            blocks.append(ModuleB(c, w, w((128, 160, 160, 192)[min(i, 3)]), cfg.n))
            c = blocks[-1].c_out
        self.lower, blocks, self.aux = nn.Sequential(*blocks), [], None
        if cfg.aux:  # §7: BN-auxiliary head on 17x17
            self.aux = nn.Sequential(
                nn.AvgPool2d(5, 3),
                ConvBN(c, 128, 1),
                ConvBN(128, 768, 5),
                nn.Flatten(),
                nn.BatchNorm1d(768),
                nn.Linear(768, cfg.num_classes),
            )
        blocks.append(
            Reduction(
                [
                    nn.Sequential(ConvBN(c, w(192), 1), ConvBN(w(192), w(320), 3, 2)),
                    nn.Sequential(
                        ConvBN(c, w(192), 1),
                        factorised(w(192), w(192), w(192), cfg.n),
                        ConvBN(w(192), w(192), 3, 2),
                    ),
                ],
                c,
                w(320) + w(192),
            )
        )
        c = blocks[-1].c_out  # 17 -> 8
        for _ in range(cfg.n_c):  # 8x8 grid
            blocks.append(ModuleC(c, w))
            c = blocks[-1].c_out
        self.upper, self.drop = nn.Sequential(*blocks), nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c, cfg.num_classes)  # Table 1: pool 8x8, linear, softmax

    def forward(self, x):  # (B, 3, 299, 299)
        h = self.lower(self.stem(x))  # (B, 768, 17, 17)
        aux = self.aux(h) if self.aux is not None and self.training else None
        h = self.upper(h).mean((2, 3))  # (B, 2048) global average pool
        return self.fc(self.drop(h)), aux  # (B, classes) logits


def label_smoothing_loss(logits: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """§7: H(q', p) = -sum_k q'(k) log p(k), q'(k) = (1 - eps) delta_{k,y} + eps u(k), u = 1/K."""
    K, log_p = logits.shape[-1], F.log_softmax(logits, -1)  # log_p: (B, K)
    q = torch.full_like(log_p, eps / K).scatter_(1, y[:, None], 1 - eps + eps / K)  # (B, K) q'
    return -(q * log_p).sum(-1).mean()


def build_model(cfg: Config) -> nn.Module:
    return InceptionV3(cfg)


def load_data(cfg: Config):
    """scikit-learn digits upsampled to image_size, standardised, fixed held-out split."""
    x_tr, y_tr, x_te, y_te = load_digits(cfg.image_size, cfg.test_size)
    x_tr, x_te = (
        x.expand(-1, cfg.in_channels, -1, -1).contiguous()
        for x in standardise(x_tr, x_te, like=x_tr)
    )
    return x_tr, y_tr, x_te, y_te


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    x_tr, y_tr, x_te, y_te = load_data(cfg)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-len(y_tr) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            xb, yb = x_tr[idx].to(device), y_tr[idx].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                logits, aux = model(xb)
            loss = label_smoothing_loss(logits.float(), yb, cfg.eps)
            if aux is not None:
                loss = loss + 0.4 * label_smoothing_loss(
                    aux.float(), yb, cfg.eps
                )  # auxiliary weight 0.4
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    train_s = time.time() - t0
    with torch.no_grad():
        model.eval()
        acc = sum(
            (model(x_te[i : i + 250].to(device))[0].argmax(1).cpu() == y_te[i : i + 250])
            .sum()
            .item()
            for i in range(0, len(y_te), 250)
        ) / len(y_te)
    return {
        "metric": GATE[0],
        "value": acc,
        "passed": acc >= GATE[2],
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.time() - t0, 2),
        "final_loss": loss.item(),
        "images_per_s": cfg.epochs * len(y_tr) / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
