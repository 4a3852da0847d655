"""LeNet-5: gradient-based learning applied to document recognition.

Paper: Gradient-Based Learning Applied to Document Recognition (LeCun et al., 1998) https://doi.org/10.1109/5.726791
Convolutions with shared 5x5 weights find local features anywhere in the image; subsampling
layers halve the resolution so that the exact position of a feature matters less (§II.A).
LeNet-5 = C1-S2-C3-S4-C5-F6-output, squashing f(a) = A tanh(S a) after every layer up to F6,
C3 wired by the partial connection table (Table I), Euclidean RBF output units (eq. 7).
Here: scikit-learn's 8x8 digits, upsampled to 28x28 and padded to the paper's 32x32 input.
Run: python -m runnable.lenet --preset tiny
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("accuracy", ">=", 0.97)

# Table I: which S2 maps (rows 0-5) each C3 map (0-15) reads. 60 connections in all.
C3_TABLE = ([[k % 6, (k + 1) % 6, (k + 2) % 6] for k in range(6)]            # 3 contiguous
            + [[(k + i) % 6 for i in range(4)] for k in range(6)]            # 4 contiguous
            + [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]                     # 4 discontinuous
            + [list(range(6))])                                              # all six


@dataclass
class Config:
    image_size: int = 32        # input plane (§II.B: 32x32, digits centred in 28x28)
    num_classes: int = 10
    j: float = 1.0              # eq. (9): constant of the "rubbish class" in the MAP loss
    epochs: int = 15
    batch_size: int = 32
    lr: float = 2e-3
    distort: float = 0.1        # §III.B: random affine distortions of the training set (0 = off)
    test_size: int = 500        # held-out digits
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(epochs=20, batch_size=1, lr=5e-4),   # §III.B: 20 passes, one pattern at a time
    "gpu": Config(epochs=60, batch_size=64, lr=1e-3),
}


def squash(a: torch.Tensor) -> torch.Tensor:
    """eq. (6): f(a) = A tanh(S a), with A = 1.7159 and S = 2/3 (Appendix A)."""
    return 1.7159 * torch.tanh(a * 2.0 / 3.0)


class Subsampling(nn.Module):
    """S2/S4 (§II.B): sum of each 2x2 block, times a trainable coefficient, plus a trainable bias."""

    def __init__(self, maps: int):
        super().__init__()
        self.coef = nn.Parameter(torch.full((maps,), 0.25))
        self.bias = nn.Parameter(torch.zeros(maps))

    def forward(self, x):                                             # (B, C, H, W)
        s = F.avg_pool2d(x, 2) * 4                                    # (B, C, H/2, W/2) block sums
        return s * self.coef[:, None, None] + self.bias[:, None, None]


class C3(nn.Module):
    """C3 with the partial connection table: only the 60 listed (output, input) pairs have kernels."""

    def __init__(self):
        super().__init__()
        pairs = [(o, i) for o, ins in enumerate(C3_TABLE) for i in ins]
        self.weight = nn.Parameter(torch.empty(len(pairs), 25))       # (60, 5*5)
        nn.init.uniform_(self.weight, -2.4 / 75, 2.4 / 75)            # Appendix A, F_i = 3 maps x 25
        self.bias = nn.Parameter(torch.zeros(16))
        self.register_buffer("slot", torch.tensor([o * 6 + i for o, i in pairs]), persistent=False)

    def forward(self, x):                                             # (B, 6, 14, 14)
        full = self.weight.new_zeros(16 * 6, 25).index_copy(0, self.slot, self.weight)
        return F.conv2d(x, full.view(16, 6, 5, 5), self.bias)         # (B, 16, 10, 10)


class LeNet5(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.C1 = nn.Conv2d(1, 6, 5)                                  # 32 -> 28, 156 params
        self.S2 = Subsampling(6)                                      # 28 -> 14, 12
        self.C3 = C3()                                                # 14 -> 10, 1516
        self.S4 = Subsampling(16)                                     # 10 -> 5, 32
        self.C5 = nn.Conv2d(16, 120, 5)                               # 5 -> 1, 48120
        self.F6 = nn.Linear(120, 84)                                  # 10164
        # Output RBF centres (eq. 7): +-1 codes set by hand and kept fixed (§II.B),
        # so they are a buffer, not parameters. The paper drew 7x12 bitmaps; we draw random codes.
        g = torch.Generator().manual_seed(1)
        codes = torch.randint(0, 2, (cfg.num_classes, 84), generator=g).float() * 2 - 1
        self.register_buffer("W_rbf", codes.to(torch.get_default_device()))
        for m in (self.C1, self.C5, self.F6):                         # Appendix A: U(-2.4/F_i, 2.4/F_i)
            fan_in = m.weight[0].numel()
            nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)

    def forward(self, x):                                             # (B, 1, 32, 32)
        x = squash(self.S2(squash(self.C1(x))))                       # (B, 6, 14, 14)
        x = squash(self.S4(squash(self.C3(x))))                       # (B, 16, 5, 5)
        x = squash(self.C5(x)).flatten(1)                             # (B, 120)
        x = squash(self.F6(x))                                        # (B, 84)
        return ((x[:, None, :] - self.W_rbf) ** 2).sum(-1)            # (B, classes) eq. (7): y_i


def map_loss(y: torch.Tensor, target: torch.Tensor, j: float) -> torch.Tensor:
    """eq. (9): E = y_D + log(e^-j + sum_i e^-y_i) -- a softmax over -y plus a constant class."""
    logits = torch.cat([-y, y.new_full((y.shape[0], 1), -j)], dim=1)  # (B, classes + 1)
    return F.cross_entropy(logits, target)


def build_model(cfg: Config) -> nn.Module:
    return LeNet5(cfg)


def distort(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """§III.B: small random affine maps (shift, scale, shear) of each training image."""
    theta = torch.eye(2, 3).repeat(len(x), 1, 1)                      # (B, 2, 3) identity
    theta += (torch.rand(len(x), 2, 3, generator=g) * 2 - 1) * amount
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 0.1, grid, align_corners=False) - 0.1   # background stays -0.1


def load_digits_32(cfg: Config):
    """Digits 8x8 -> 28x28 (bilinear) -> padded to 32x32; background -0.1, ink 1.175 (§II.B)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0   # (N, 1, 8, 8) in [0, 1]
    inner = cfg.image_size - 4
    x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False).clamp(0, 1)
    x = F.pad(x * 1.275 - 0.1, (2, 2, 2, 2), value=-0.1)              # (N, 1, 32, 32)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[:cfg.test_size], perm[cfg.test_size:]
    return x[tr], y[tr], x[te], y[te]


@torch.no_grad()
def accuracy(model, x, y, device, batch=500):
    model.eval()
    hits = sum((model(x[i:i + batch].to(device)).argmin(1).cpu() == y[i:i + batch]).sum().item()
               for i in range(0, len(y), batch))                       # smallest RBF distance wins
    return hits / len(y)


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    x_tr, y_tr, x_te, y_te = load_digits_32(cfg)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)            # paper: stochastic diagonal LM
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            xb = distort(x_tr[idx], cfg.distort, g) if cfg.distort else x_tr[idx]
            xb, yb = xb.to(device), y_tr[idx].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                y_rbf = model(xb)
            loss = map_loss(y_rbf.float(), yb, cfg.j)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    acc = accuracy(model, x_te, y_te, device)
    return {"metric": GATE[0], "value": acc, "passed": acc >= GATE[2],
            "params": sum(p.numel() for p in model.parameters()),
            "seconds": round(time.time() - t0, 2),
            "train_accuracy": accuracy(model, x_tr, y_tr, device), "final_loss": loss.item()}


def _parse(value: str, default):
    if isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    return type(default)(value)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny", choices=PRESETS)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    args, rest = p.parse_known_args(argv)
    cfg = PRESETS[args.preset]
    names = {f.name for f in dataclasses.fields(cfg)}
    for item in rest:                                                 # --field=value overrides
        key, sep, value = item.removeprefix("--").partition("=")
        key = key.replace("-", "_")
        if not sep or key not in names:
            p.error(f"unknown argument {item!r}; fields: {sorted(names)}")
        cfg = dataclasses.replace(cfg, **{key: _parse(value, getattr(cfg, key))})
    result = train(cfg, args.device)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
