"""Network In Network: mlpconv layers and global average pooling.

Paper: Network In Network (Lin et al., 2014) https://arxiv.org/abs/1312.4400
A convolution is a generalised linear model of each patch; NIN replaces it with a small MLP
slid over the image ("mlpconv", §3.1), which is a k x k convolution followed by 1x1
convolutions (cross-channel parametric pooling). The last mlpconv emits one map per class and
global average pooling turns each map into a class score (§3.2): no fully connected layers.
Tiny: three mlpconv blocks on scikit-learn's digits upsampled to 16x16.
Run: python -m runnable.nin --preset tiny
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

GATE = ("accuracy", ">=", 0.95)


@dataclass
class Config:
    image_size: int = 16
    in_channels: int = 1
    num_classes: int = 10
    kernels: str = "3,3,3"                   # k of the first conv in each mlpconv block
    widths: str = "32,32,32;48,48,48;48,48"  # per block: k x k conv, 1x1, 1x1; last 1x1 -> classes
    dropout: float = 0.25                    # §4.1: on the outputs of all but the last mlpconv (0.5)
    epochs: int = 12
    batch_size: int = 32
    lr: float = 3e-3
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    # CIFAR-10 net of §4.2; widths/kernels from the authors' released Caffe definition.
    "paper": Config(image_size=32, in_channels=3, kernels="5,5,3",
                    widths="192,160,96;192,192,192;192,192", dropout=0.5, epochs=100, batch_size=128, lr=1e-3),
    "gpu": Config(image_size=32, widths="96,96,96;192,192,192;192,192", epochs=80, batch_size=128),
}


def mlpconv(c_in: int, widths: list[int], k: int) -> list[nn.Module]:
    """§3.1 eq. (2): f^1 = relu(W^1 x + b^1), ..., f^n = relu(W^n f^{n-1} + b^n) at every patch."""
    layers, c = [nn.Conv2d(c_in, widths[0], k, padding=k // 2), nn.ReLU()], widths[0]
    for w in widths[1:]:
        layers += [nn.Conv2d(c, w, 1), nn.ReLU()]                      # 1x1 conv = per-pixel MLP layer
        c = w
    return layers


class NIN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        kernels = [int(k) for k in cfg.kernels.split(",")]
        blocks = [[int(w) for w in b.split(",")] for b in cfg.widths.split(";")]
        blocks[-1].append(cfg.num_classes)                             # §3.2: one map per class
        layers, c = [], cfg.in_channels
        for i, (k, widths) in enumerate(zip(kernels, blocks)):
            layers += mlpconv(c, widths, k)
            if i < len(blocks) - 1:                                    # pool + dropout between blocks
                layers += [nn.MaxPool2d(3, stride=2, padding=1), nn.Dropout(cfg.dropout)]
            c = widths[-1]
        layers[-1] = nn.Identity()           # class maps stay linear; softmax follows the pooling
        self.mlpconvs = nn.Sequential(*layers)
        for m in self.modules():             # He init keeps a 9-layer ReLU stack from going quiet
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):                                              # (B, C, H, W)
        maps = self.mlpconvs(x)                                        # (B, classes, H/4, W/4)
        return maps.mean(dim=(2, 3))                                   # (B, classes) §3.2 GAP


def build_model(cfg: Config) -> nn.Module:
    return NIN(cfg)


def load_data(cfg: Config):
    """scikit-learn digits, upsampled to image_size, zero-mean unit-variance, fixed held-out split."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0    # (N, 1, 8, 8)
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
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # CPU max-pool: faster
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)            # paper: SGD with momentum
    steps = cfg.epochs * -(-len(y_tr) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            xb = x_tr[idx].to(device, memory_format=torch.channels_last)
            yb = y_tr[idx].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = F.cross_entropy(model(xb).float(), yb)          # softmax over the GAP scores
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
    for item in rest:                                                  # --field=value overrides
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
