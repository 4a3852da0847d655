"""DenseNet: densely connected convolutional networks.

Paper: Densely Connected Convolutional Networks (Huang et al., 2017) https://arxiv.org/abs/1608.06993
Inside a dense block every layer receives the concatenation of all earlier feature maps,
x_l = H_l([x_0, x_1, ..., x_{l-1}]) (eq. 2), and adds only k new maps (the growth rate, §3).
Transition layers (BN, 1x1 conv, 2x2 average pooling) between blocks shrink the maps; the
BC variant adds 1x1 bottlenecks of 4k maps and compresses transitions by theta < 1.
The claim (§1, §4.3, Fig. 4): reusing features makes DenseNets far more parameter-efficient
than ResNets. The contrast: a pre-activation ResNet with as many parameters (or a few more),
trained the same way. Tiny: a DenseNet with k=2 (8.8k parameters) and a ResNet-20 of width 3
(9.9k) on scikit-learn's digits (12x12) placed anywhere up to 4 pixels off centre on 20x20.
Run: python -m runnable.densenet --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runnable._digits import accuracy, fit, load_shifted, n_params

GATE = ("accuracy", ">=", 0.9)


@dataclass
class Config:
    image_size: int = 20
    in_channels: int = 1
    num_classes: int = 10
    depth: int = 16  # L: all conv/linear layers; (L - 4) / 3 per block (no BC)
    k: int = 2  # growth rate
    bottleneck: bool = False  # B: 1x1 conv to 4k maps before each 3x3 (§3)
    theta: float = 1.0  # C: compression of transition layers (§3), 0.5 for BC
    dropout: float = 0.0  # §4.2: 0.2 after each conv when no data augmentation
    res_width: int = 3  # the ablation: ResNet with widths w, 2w, 4w ...
    res_blocks: int = 3  # ... and this many basic blocks per stage (6n + 2 layers)
    digit_size: int = 12  # tiny data: digits upsampled to this, placed at most
    max_shift: int = 4  # this many pixels off centre
    epochs: int = 6
    batch_size: int = 32
    lr: float = 0.1  # §4.2: SGD, Nesterov momentum 0.9, weight decay 1e-4
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        image_size=32,
        in_channels=3,
        depth=40,
        k=12,
        dropout=0.2,
        epochs=300,
        batch_size=64,
        res_width=16,
        res_blocks=11,
    ),  # Table 2: DenseNet (L=40, k=12)
    "gpu": Config(
        image_size=32,
        depth=100,
        k=12,
        bottleneck=True,
        theta=0.5,
        epochs=60,
        batch_size=128,
        res_width=16,
        res_blocks=9,  # DenseNet-BC (L=100, k=12)
        digit_size=20,
        max_shift=6,
    ),
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

    def forward(self, x):  # (B, c_0 + (l-1) k, H, W)
        return torch.cat([x, self.H(x)], dim=1)  # eq. (2): (B, c_0 + l k, ..)


class Transition(nn.Sequential):
    """§3 pooling layers: BN (+ ReLU, as in the authors' code), 1x1 conv to floor(theta m) maps,
    2x2 average pooling."""

    def __init__(self, m: int, theta: float, dropout: float):
        self.c_out = int(theta * m)
        super().__init__(
            nn.BatchNorm2d(m),
            nn.ReLU(),
            nn.Conv2d(m, self.c_out, 1, bias=False),
            nn.Dropout(dropout),
            nn.AvgPool2d(2),
        )


class DenseNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        per_block = (cfg.depth - 4) // 3 // (2 if cfg.bottleneck else 1)  # layers per block
        c = 2 * cfg.k if cfg.bottleneck else 16  # §4.2: first conv maps
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, c, 3, padding=1, bias=False)]
        for b in range(3):
            for _ in range(per_block):
                layers.append(DenseLayer(c, cfg.k, cfg.bottleneck, cfg.dropout))
                c += cfg.k  # growth rate: k per layer
            if b < 2:
                layers.append(Transition(c, cfg.theta, cfg.dropout))
                c = layers[-1].c_out
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, cfg.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):  # (B, C, s, s)
        x = self.features(x)  # (B, c, s/4, s/4)
        return self.fc(x.mean(dim=(2, 3)))  # global avg pool, softmax


class ResidualBlock(nn.Module):
    """The ablation's block: pre-activation BN-ReLU-Conv(3x3) twice, added to its input (a 1x1
    projection where the shape changes); what DenseNet concatenates, a ResNet sums (§3)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.F = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
        )
        self.shortcut = (
            nn.Identity()
            if (c_in, stride) == (c_out, 1)
            else nn.Conv2d(c_in, c_out, 1, stride, bias=False)
        )

    def forward(self, x):
        return self.F(x) + self.shortcut(x)  # x_l = H_l(x_{l-1}) + x_{l-1}


class ResNet(nn.Module):
    """CIFAR layout: 3x3 conv, three stages of `res_blocks` blocks at widths w, 2w, 4w."""

    def __init__(self, cfg: Config):
        super().__init__()
        w = cfg.res_width
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, w, 3, padding=1, bias=False)]
        c = w
        for stage, c_out in enumerate((w, 2 * w, 4 * w)):
            for i in range(cfg.res_blocks):
                layers.append(ResidualBlock(c, c_out, 2 if stage > 0 and i == 0 else 1))
                c = c_out
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU())
        self.fc = nn.Linear(c, cfg.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x):  # (B, C, s, s)
        return self.fc(self.features(x).mean(dim=(2, 3)))  # (B, classes)


def build_model(cfg: Config) -> nn.Module:
    return DenseNet(cfg)


def load_data(cfg: Config):
    """Training and held-out digits alike at most max_shift pixels off centre."""
    return load_shifted(
        cfg.digit_size, cfg.image_size, cfg.max_shift, cfg.max_shift, cfg.test_size, cfg.in_channels
    )


def train(cfg: Config, device: str = "cpu") -> dict:
    """Train the DenseNet and the ResNet of (about) as many parameters identically, from the
    same seed on the same batches; score both on held-out digits."""
    t0 = time.time()
    data = load_data(cfg)
    history, info = {}, {}
    for role, make in (("idea", DenseNet), ("ablation", ResNet)):
        torch.manual_seed(cfg.seed)
        model = make(cfg).to(device, memory_format=torch.channels_last)  # NHWC: faster on CPU
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=1e-4
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)  # paper: /10 steps
        history[role] = fit(
            model,
            data,
            lambda m, xb, yb: F.cross_entropy(m(xb).float(), yb),
            opt,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            device=device,
            sched=sched,
            channels_last=True,
        )
        info[role] = {
            "params": n_params(model),
            "train_accuracy": accuracy(model, data[0], data[1], device),
        }
    acc, abl = history["idea"][-1], history["ablation"][-1]
    p_idea, p_abl = info["idea"]["params"], info["ablation"]["params"]
    conditions = {"the ResNet has at least as many parameters": p_abl >= p_idea}
    return {
        "metric": GATE[0],
        "value": acc,
        "ablation": {
            "name": f"ResNet-{6 * cfg.res_blocks + 2} with {p_abl:,} parameters",
            "value": abl,
        },
        "conditions": conditions,
        "passed": acc >= GATE[2] and not abl >= GATE[2] and all(conditions.values()),
        "seed": cfg.seed,
        "history": {"x": "epoch", **history},
        "params": p_idea,
        "ablation_params": p_abl,
        "train_accuracy": info["idea"]["train_accuracy"],
        "ablation_train_accuracy": info["ablation"]["train_accuracy"],
        "seconds": round(time.time() - t0, 2),
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
