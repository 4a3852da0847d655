"""AlexNet: a deep convolutional network trained with ReLU and dropout.

Paper: ImageNet Classification with Deep Convolutional Neural Networks (Krizhevsky et al., 2012) https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks
Five convolutional layers and three fully connected ones, made trainable at scale by
non-saturating ReLUs (§3.1), local response normalisation (§3.3), overlapping max-pooling
(§3.4), dropout in the first two FC layers (§4.2) and translation augmentation (§4.1).
conv2, conv4 and conv5 read only the maps on their own GPU (§3.2, §3.5): groups=2 here.
Tiny: a narrow copy on scikit-learn's digits upsampled to 24x24.
Run: python -m runnable.alexnet --preset tiny
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
    image_size: int = 24
    in_channels: int = 1
    num_classes: int = 10
    widths: str = "16,32,48,48,32"   # conv1..conv5 kernels (paper: 96,256,384,384,256)
    fc: int = 256                    # FC6 / FC7 width (paper: 4096)
    k1: int = 5                      # conv1 kernel size (paper: 11)
    s1: int = 1                      # conv1 stride (paper: 4)
    groups: int = 2                  # §3.5: two GPUs, conv2/4/5 connect within a GPU only
    dropout: float = 0.5             # §4.2
    init_std: float = 0.0            # §5: weights ~ N(0, 0.01); 0 = He's std instead
    bias: float = 0.1                # §5: initial bias of conv2/4/5, FC6/7 (paper: 1)
    shift: int = 1                   # §4.1: random translations of up to this many pixels
    epochs: int = 9
    batch_size: int = 32
    lr: float = 2e-3                 # Adam here; §5 used SGD, momentum 0.9, weight decay 5e-4
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(image_size=224, in_channels=3, num_classes=1000, widths="96,256,384,384,256",
                    fc=4096, k1=11, s1=4, init_std=0.01, bias=1.0, shift=16, epochs=90, batch_size=128, lr=1e-4),
    "gpu": Config(image_size=64, widths="64,192,256,256,192", fc=1024, k1=7, s1=2,
                  shift=6, epochs=60, batch_size=128, lr=1e-3),
}


class LRN(nn.Module):
    """§3.3: b^i = a^i / (k + alpha * sum_{j=i-n/2}^{i+n/2} (a^j)^2)^beta over neighbouring kernels.

    nn.LocalResponseNorm divides alpha by n; this is the paper's form (k=2, n=5, alpha=1e-4, beta=0.75).
    """

    def __init__(self, n=5, k=2.0, alpha=1e-4, beta=0.75):
        super().__init__()
        self.n, self.k, self.alpha, self.beta = n, k, alpha, beta

    def forward(self, a):                                             # (B, N, H, W)
        N = a.shape[1]
        sq = F.pad((a * a)[:, None], (0, 0, 0, 0, self.n // 2, (self.n - 1) // 2))[:, 0]
        window = sum(sq[:, j:j + N] for j in range(self.n))           # (B, N, H, W) sum over j
        return a / (self.k + self.alpha * window) ** self.beta


class AlexNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c1, c2, c3, c4, c5 = (int(w) for w in cfg.widths.split(","))
        g = cfg.groups
        pool = lambda: nn.MaxPool2d(kernel_size=3, stride=2)          # §3.4 overlapping: z=3, s=2
        self.features = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c1, cfg.k1, cfg.s1, padding=2), nn.ReLU(), LRN(), pool(),
            nn.Conv2d(c1, c2, 5, padding=2, groups=g), nn.ReLU(), LRN(), pool(),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),               # conv3 reads both GPUs
            nn.Conv2d(c3, c4, 3, padding=1, groups=g), nn.ReLU(),
            nn.Conv2d(c4, c5, 3, padding=1, groups=g), nn.ReLU(), pool())
        s = (cfg.image_size + 4 - cfg.k1) // cfg.s1 + 1               # padding 2: 224 -> 55 as in Fig. 2
        for _ in range(3):
            s = (s - 3) // 2 + 1                                      # 55 -> 27 -> 13 -> 6
        self.classifier = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(c5 * s * s, cfg.fc), nn.ReLU(),   # FC6
            nn.Dropout(cfg.dropout), nn.Linear(cfg.fc, cfg.fc), nn.ReLU(),       # FC7
            nn.Linear(cfg.fc, cfg.num_classes))                                  # FC8 -> softmax
        # §5 initialises N(0, 0.01) and sets bias 1 in conv2/4/5 and FC6/7 so that ReLUs start
        # with positive inputs. The tiny net starts too quiet from std 0.01, so it uses He's std
        # and a smaller positive bias; FC8 keeps std 0.01.
        layers = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for i, m in enumerate(layers):
            if cfg.init_std:
                nn.init.normal_(m.weight, std=cfg.init_std)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.constant_(m.bias, cfg.bias if i in (1, 3, 4, 5, 6) else 0.0)
        nn.init.normal_(layers[-1].weight, std=0.01)

    def forward(self, x):                                             # (B, 3, 224, 224)
        return self.classifier(self.features(x).flatten(1))           # (B, classes)


def build_model(cfg: Config) -> nn.Module:
    return AlexNet(cfg)


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


def translate(x, shift, g):
    """§4.1: random crops = random translations; pad by `shift` and cut the original size back out."""
    if shift == 0:
        return x
    B, _, H, W = x.shape
    xp = F.pad(x, (shift,) * 4, value=x.min().item())
    dy, dx = torch.randint(0, 2 * shift + 1, (2,), generator=g).tolist()
    return xp[:, :, dy:dy + H, dx:dx + W]                            # one offset per batch


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
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)           # faster than §5's SGD on CPU
    steps = cfg.epochs * -(-len(y_tr) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            xb, yb = translate(x_tr[idx], cfg.shift, g).to(device), y_tr[idx].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = F.cross_entropy(model(xb).float(), yb)         # multinomial logistic regression
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
