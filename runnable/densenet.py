"""DenseNet: densely connected convolutional networks.

Paper: Densely Connected Convolutional Networks (Huang et al., 2017) https://arxiv.org/abs/1608.06993
Inside a dense block every layer receives the concatenation of all earlier feature maps,
x_l = H_l([x_0, x_1, ..., x_{l-1}]) (eq. 2), and adds only k new maps (the growth rate, §3).
Transition layers (BN, 1x1 conv, 2x2 average pooling) between blocks shrink the maps; the
BC variant adds 1x1 bottlenecks of 4k maps and compresses transitions by theta < 1.
Tiny: a small DenseNet (k=8, 3 blocks of 4 layers) on scikit-learn's digits upsampled to 16x16.
Run: python -m runnable.densenet --preset tiny
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


@dataclass
class Config:
    image_size: int = 16
    in_channels: int = 1
    num_classes: int = 10
    depth: int = 16                  # L: all conv/linear layers; (L - 4) / 3 per block (no BC)
    k: int = 8                       # growth rate
    bottleneck: bool = False         # B: 1x1 conv to 4k maps before each 3x3 (§3)
    theta: float = 1.0               # C: compression of transition layers (§3), 0.5 for BC
    dropout: float = 0.0             # §4.2: 0.2 after each conv when no data augmentation
    epochs: int = 4
    batch_size: int = 32
    lr: float = 0.1                  # §4.2: SGD, Nesterov momentum 0.9, weight decay 1e-4
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(image_size=32, in_channels=3, depth=40, k=12, dropout=0.2, epochs=300,
                    batch_size=64),                              # Table 2: DenseNet (L=40, k=12)
    "gpu": Config(image_size=32, depth=100, k=12, bottleneck=True, theta=0.5, epochs=60,
                  batch_size=128),                               # DenseNet-BC (L=100, k=12)
}


class DenseLayer(nn.Module):
    """H_l (§3): BN-ReLU-Conv(3x3) producing k maps; with B, BN-ReLU-Conv(1x1, 4k) first."""

    def __init__(self, c_in: int, k: int, bottleneck: bool, dropout: float):
        super().__init__()
        layers = []
        if bottleneck:
            layers += [nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, 4 * k, 1, bias=False)]
            c_in = 4 * k
        layers += [nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, k, 3, padding=1, bias=False)]
        self.H = nn.Sequential(*layers, nn.Dropout(dropout))

    def forward(self, x):                                             # (B, c_0 + (l-1) k, H, W)
        return torch.cat([x, self.H(x)], dim=1)                       # eq. (2): (B, c_0 + l k, H, W)


class Transition(nn.Sequential):
    """§3 pooling layers: BN (+ ReLU, as in the authors' code), 1x1 conv to floor(theta m) maps,
    2x2 average pooling."""

    def __init__(self, m: int, theta: float, dropout: float):
        self.c_out = int(theta * m)
        super().__init__(nn.BatchNorm2d(m), nn.ReLU(), nn.Conv2d(m, self.c_out, 1, bias=False),
                         nn.Dropout(dropout), nn.AvgPool2d(2))


class DenseNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        per_block = (cfg.depth - 4) // 3 // (2 if cfg.bottleneck else 1)   # layers per dense block
        c = 2 * cfg.k if cfg.bottleneck else 16                        # §4.2: first conv, 16 or 2k maps
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, c, 3, padding=1, bias=False)]
        for b in range(3):
            for _ in range(per_block):
                layers.append(DenseLayer(c, cfg.k, cfg.bottleneck, cfg.dropout))
                c += cfg.k                                             # growth rate: k maps per layer
            if b < 2:
                layers.append(Transition(c, cfg.theta, cfg.dropout))
                c = layers[-1].c_out
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, cfg.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):                                             # (B, C, s, s)
        x = self.features(x)                                          # (B, c, s/4, s/4)
        return self.fc(x.mean(dim=(2, 3)))                            # global avg pool, softmax


def build_model(cfg: Config) -> nn.Module:
    return DenseNet(cfg)


def load_data(cfg: Config):
    """scikit-learn digits, upsampled to image_size, zero-mean unit-variance, fixed held-out split."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0   # (N, 1, 8, 8)
    x = F.interpolate(x, size=(cfg.image_size,) * 2, mode="bilinear", align_corners=False)
    x = ((x - x.mean()) / x.std()).expand(-1, cfg.in_channels, -1, -1).contiguous()
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[:cfg.test_size], perm[cfg.test_size:]
    return x[tr], y[tr], x[te], y[te]


@torch.no_grad()
def accuracy(model, x, y, device, batch=500):
    model.eval()
    hits = sum((model(x[i:i + batch].to(device)).argmax(1).cpu() == y[i:i + batch]).sum().item()
               for i in range(0, len(y), batch))
    return hits / len(y)


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    x_tr, y_tr, x_te, y_te = load_data(cfg)
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # NHWC: CPU conv ~1.5x faster
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)  # paper: /10 at 50 %, 75 %
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            xb, yb = x_tr[idx].to(device, memory_format=torch.channels_last), y_tr[idx].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = F.cross_entropy(model(xb).float(), yb)
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
