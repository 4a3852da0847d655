"""GoogLeNet: going deeper with Inception modules.

Paper: Going Deeper with Convolutions (Szegedy et al., 2015) https://arxiv.org/abs/1409.4842
An Inception module runs 1x1, 3x3 and 5x5 convolutions and a 3x3 max-pool side by side and
concatenates their outputs; 1x1 convolutions first reduce the channels feeding the costly 3x3
and 5x5 branches and project the pool branch (§4, Fig. 2b). Auxiliary classifiers on
intermediate modules add 0.3 x their loss during training and are discarded at inference (§5).
Tiny: four small Inception modules (one auxiliary head) on digits upsampled to 16x16.
Run: python -m runnable.googlenet --preset tiny
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

# Table 1: per module "#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj"; M = max-pool 3/2,
# A = an auxiliary classifier reads the module before it (on 4a and 4d).
PAPER_MODULES = ("64,96,128,16,32,32 128,128,192,32,96,64 M "                       # 3a 3b
                 "192,96,208,16,48,64 A 160,112,224,24,64,64 128,128,256,24,64,64 "  # 4a 4b 4c
                 "112,144,288,32,64,64 A 256,160,320,32,128,128 M "                  # 4d 4e
                 "256,160,320,32,128,128 384,192,384,48,128,128")                    # 5a 5b


@dataclass
class Config:
    image_size: int = 16
    in_channels: int = 1
    num_classes: int = 10
    stem: str = "small"                    # "paper": Fig. 3 stem (/8); "small": one 3x3 conv (/1)
    stem_width: int = 32                   # channels out of the stem (paper: 192)
    modules: str = "16,16,24,4,8,8 24,24,32,8,16,8 M 32,24,48,8,16,16 A 40,32,56,8,16,16"
    aux_width: int = 32                    # aux head: 1x1 conv channels (paper: 128)
    aux_fc: int = 128                      # aux head: FC width (paper: 1024)
    aux_weight: float = 0.3                # §5: weight of each auxiliary loss
    dropout: float = 0.4                   # §5: before the final linear layer
    epochs: int = 6
    batch_size: int = 32
    lr: float = 3e-3
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(image_size=224, in_channels=3, num_classes=1000, stem="paper", stem_width=192,
                    modules=PAPER_MODULES, aux_width=128, aux_fc=1024, epochs=100, batch_size=128,
                    lr=1e-3),
    "gpu": Config(image_size=32, stem_width=64, modules="32,48,64,8,16,16 64,64,96,16,48,32 M "
                  "96,48,104,8,24,32 A 80,56,112,12,32,32 M 128,80,160,16,64,64", epochs=60),
}


def conv(c_in, c_out, k, stride=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, padding=k // 2), nn.ReLU())


class Inception(nn.Module):
    """Fig. 2(b): four parallel branches, concatenated along the channels."""

    def __init__(self, c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
        super().__init__()
        self.b1 = conv(c_in, n1x1, 1)
        self.b2 = nn.Sequential(conv(c_in, n3x3red, 1), conv(n3x3red, n3x3, 3))  # 1x1 reduce first
        self.b3 = nn.Sequential(conv(c_in, n5x5red, 1), conv(n5x5red, n5x5, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), conv(c_in, pool_proj, 1))
        self.c_out = n1x1 + n3x3 + n5x5 + pool_proj

    def forward(self, x):                                             # (B, c_in, H, W)
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)  # (B, c_out, H, W)


class AuxClassifier(nn.Module):
    """§5: avg-pool 5x5/3, 1x1 conv, FC + ReLU, dropout 70 %, linear softmax."""

    def __init__(self, c_in, side, cfg: Config):
        super().__init__()
        s = (side - 5) // 3 + 1                                       # 14 -> 4
        self.head = nn.Sequential(
            nn.AvgPool2d(5, 3), conv(c_in, cfg.aux_width, 1), nn.Flatten(),
            nn.Linear(cfg.aux_width * s * s, cfg.aux_fc), nn.ReLU(), nn.Dropout(0.7),
            nn.Linear(cfg.aux_fc, cfg.num_classes))

    def forward(self, x):
        return self.head(x)                                           # (B, classes)


class GoogLeNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        if cfg.stem == "paper":                                       # Table 1 / Fig. 3, 224 -> 28
            self.stem = nn.Sequential(
                conv(cfg.in_channels, 64, 7, 2), nn.MaxPool2d(3, 2, padding=1),
                nn.LocalResponseNorm(5), conv(64, 64, 1), conv(64, cfg.stem_width, 3),
                nn.LocalResponseNorm(5), nn.MaxPool2d(3, 2, padding=1))
            side = cfg.image_size // 8
        else:
            self.stem, side = conv(cfg.in_channels, cfg.stem_width, 3), cfg.image_size
        self.body, self.aux, self.aux_at = nn.ModuleList(), nn.ModuleList(), []
        c = cfg.stem_width
        for tok in cfg.modules.split():
            if tok == "M":
                self.body.append(nn.MaxPool2d(3, 2, padding=1))
                side = (side - 1) // 2 + 1
            elif tok == "A":
                self.aux.append(AuxClassifier(c, side, cfg))
                self.aux_at.append(len(self.body) - 1)                # index of the module it reads
            else:
                self.body.append(Inception(c, *(int(n) for n in tok.split(","))))
                c = self.body[-1].c_out
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c, cfg.num_classes)
        for m in self.modules():             # He init: no batch norm in 2014, so keep ReLUs lively
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):                                             # (B, C, H, W)
        x, aux_logits = self.stem(x), []
        for i, layer in enumerate(self.body):
            x = layer(x)
            if self.training and i in self.aux_at:                    # aux heads: training only
                aux_logits.append(self.aux[self.aux_at.index(i)](x))
        logits = self.fc(self.dropout(x.mean(dim=(2, 3))))            # (B, classes) avg-pool, 40 % dropout
        return (logits, aux_logits) if self.training else logits


def build_model(cfg: Config) -> nn.Module:
    return GoogLeNet(cfg)


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
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # CPU max-pool: ~10x faster
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)            # paper: async SGD, momentum 0.9
    steps = cfg.epochs * -(-len(y_tr) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            xb = x_tr[idx].to(device, memory_format=torch.channels_last)
            yb = y_tr[idx].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                logits, aux_logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb)
            loss = loss + sum(cfg.aux_weight * F.cross_entropy(a.float(), yb) for a in aux_logits)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    acc = accuracy(model, x_te, y_te, device)
    return {"metric": GATE[0], "value": acc, "passed": acc >= GATE[2],
            "params": sum(p.numel() for p in model.parameters()),
            "params_inference": sum(p.numel() for n, p in model.named_parameters()
                                    if not n.startswith("aux.")),
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
