"""Network In Network: mlpconv layers and global average pooling.

Paper: Network In Network (Lin et al., 2014) https://arxiv.org/abs/1312.4400
A convolution is a generalised linear model of each patch; NIN replaces it with a small MLP
slid over the image ("mlpconv", §3.1), which is a k x k convolution followed by 1x1
convolutions (cross-channel parametric pooling). The last mlpconv emits one map per class and
global average pooling turns each map into a class score (§3.2): no fully connected layers.
§3.2 argues that averaging sums out where a feature was, so GAP "is more robust to spatial
translations of the input". The contrast here: the same mlpconv stack with a fully connected
head on the flattened class maps, both trained on digits jittered by at most 1 pixel and both
tested on held-out digits shifted by up to 4 pixels.
Tiny: three mlpconv blocks on scikit-learn's digits (12x12) placed on a 20x20 canvas.
Run: python -m runnable.nin --preset tiny
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runnable._digits import accuracy, fit, load_shifted, n_params

GATE = ("accuracy", ">=", 0.75)


@dataclass
class Config:
    image_size: int = 20
    in_channels: int = 1
    num_classes: int = 10
    kernels: str = "3,3,3"  # k of the first conv in each mlpconv block
    widths: str = "32,32,32;48,48,48;48,48"  # per block: k x k, 1x1, 1x1 (last 1x1 -> classes)
    head: str = "gap"  # "gap" (§3.2) or "fc": the ablation's head
    dropout: float = 0.25  # §4.1: after every mlpconv but the last (0.5)
    digit_size: int = 12  # digits are upsampled to this and put on the canvas
    train_shift: int = 1  # at most this many pixels off centre for training,
    test_shift: int = 4  # up to this many for the held-out digits
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    # CIFAR-10 net of §4.2; widths/kernels from the authors' released Caffe definition.
    "paper": Config(
        image_size=32,
        in_channels=3,
        kernels="5,5,3",
        dropout=0.5,
        widths="192,160,96;192,192,192;192,192",
        epochs=100,
        batch_size=128,
        lr=1e-3,
    ),
    "gpu": Config(
        image_size=32,
        digit_size=20,
        test_shift=6,
        widths="96,96,96;192,192,192;192,192",
        epochs=80,
        batch_size=128,
    ),
}


def mlpconv(c_in: int, widths: list[int], k: int) -> list[nn.Module]:
    """§3.1 eq. (2): f^1 = relu(W^1 x + b^1), ..., f^n = relu(W^n f^{n-1} + b^n) per patch."""
    layers, c = [nn.Conv2d(c_in, widths[0], k, padding=k // 2), nn.ReLU()], widths[0]
    for w in widths[1:]:
        layers += [nn.Conv2d(c, w, 1), nn.ReLU()]  # 1x1 conv = per-pixel MLP
        c = w
    return layers


class GlobalAveragePooling(nn.Module):
    """§3.2: the score of class c is the mean of the c-th map; it has no parameters."""

    def forward(self, maps):  # (B, classes, h, w)
        return maps.mean(dim=(2, 3))  # (B, classes)


class FullyConnectedHead(nn.Module):
    """The ablation (§4.5's "mlpconv + fully connected"): every cell of every class map has its
    own weight to every class score, so a score depends on where the evidence lies."""

    def __init__(self, num_classes: int, side: int):
        super().__init__()
        self.fc = nn.Linear(num_classes * side * side, num_classes)

    def forward(self, maps):  # (B, classes, h, w)
        return self.fc(maps.flatten(1))  # (B, classes)


class NIN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        kernels = [int(k) for k in cfg.kernels.split(",")]
        blocks = [[int(w) for w in b.split(",")] for b in cfg.widths.split(";")]
        blocks[-1].append(cfg.num_classes)  # §3.2: one map per class
        layers, c, side = [], cfg.in_channels, cfg.image_size
        for i, (k, widths) in enumerate(zip(kernels, blocks)):
            layers += mlpconv(c, widths, k)
            if i < len(blocks) - 1:  # pool, dropout between
                layers += [nn.MaxPool2d(3, stride=2, padding=1), nn.Dropout(cfg.dropout)]
                side = (side - 1) // 2 + 1
            c = widths[-1]
        layers[-1] = nn.Identity()  # class maps stay linear; softmax follows the head
        self.mlpconvs = nn.Sequential(*layers)
        for m in self.modules():  # He init keeps a 9-layer ReLU stack from going quiet
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.head = (
            GlobalAveragePooling()
            if cfg.head == "gap"  # made last: both heads'
            else FullyConnectedHead(cfg.num_classes, side)
        )  # nets share mlpconv weights

    def forward(self, x):  # (B, C, H, W)
        return self.head(self.mlpconvs(x))  # (B, classes)


def build_model(cfg: Config) -> nn.Module:
    return NIN(cfg)


def load_data(cfg: Config):
    """Training digits at most train_shift pixels off centre, held-out ones up to test_shift."""
    return load_shifted(
        cfg.digit_size,
        cfg.image_size,
        cfg.train_shift,
        cfg.test_shift,
        cfg.test_size,
        cfg.in_channels,
    )


def train(cfg: Config, device: str = "cpu") -> dict:
    """Train NIN with global average pooling and the same net with a fully connected head, from
    the same seed, on the same batches; score both on the shifted held-out digits."""
    t0 = time.time()
    data = load_data(cfg)
    history, params, train_acc = {}, {}, {}
    for role, head in (("idea", "gap"), ("ablation", "fc")):
        torch.manual_seed(cfg.seed)  # same mlpconv weights
        model = NIN(dataclasses.replace(cfg, head=head))
        model = model.to(device, memory_format=torch.channels_last)  # CPU max-pool: faster
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)  # paper: SGD with momentum
        steps = cfg.epochs * -(-len(data[1]) // cfg.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
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
            step_sched=True,
            channels_last=True,
        )
        params[role] = n_params(model)
        train_acc[role] = accuracy(model, data[0], data[1], device)
    acc, abl = history["idea"][-1], history["ablation"][-1]
    return {
        "metric": GATE[0],
        "value": acc,
        "ablation": {
            "name": "fully connected head instead of global average pooling",
            "value": abl,
        },
        "conditions": {},
        "passed": acc >= GATE[2] and not abl >= GATE[2],
        "seed": cfg.seed,
        "history": {"x": "epoch", **history},
        "params": params["idea"],
        "ablation_params": params["ablation"],
        "train_accuracy": train_acc["idea"],
        "ablation_train_accuracy": train_acc["ablation"],
        "seconds": round(time.time() - t0, 2),
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
