"""ZFNet: looking inside a convnet with a deconvnet, and fixing AlexNet's first layers.

Paper: Visualizing and Understanding Convolutional Networks (Zeiler et al., 2014) https://arxiv.org/abs/1311.2901
A deconvnet maps a feature activation back to pixels (§2.1): unpool with the "switches"
recorded by max-pooling, rectify, and filter with the transposed conv filters, layer by layer.
What it showed (aliasing, dead filters in AlexNet's 11x11 stride-4 conv1) led to the ZF model
(§4.1, Fig. 3): 7x7 stride-2 first filters, stride-2 conv2, dense layers 3-5, single GPU.
Tiny: a narrow ZF net on 28x28 digits; deconvnet() projects a conv2 activation to the input.
Gate: held-out accuracy on scikit-learn's digits >= 0.95.
Run: python -m runnable.zfnet --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("accuracy", ">=", 0.95)


@dataclass
class Config:
    image_size: int = 28
    in_channels: int = 1
    num_classes: int = 10
    widths: str = "16,32,48,48,32"  # conv1..conv5 filters (Fig. 3: 96,256,384,384,256)
    fc: int = 128  # layers 6 and 7 (Fig. 3: 4096)
    s2: int = 1  # conv2 stride (Fig. 3: 2; the 28x28 tiny input is too small)
    p2: int = 2  # conv2 padding (Fig. 3: 0)
    dropout: float = 0.5  # §3: dropout 0.5 in layers 6 and 7
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3  # Adam here (§3: SGD, batch 128, lr 1e-2, momentum 0.9)
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        image_size=224,
        in_channels=3,
        num_classes=1000,
        widths="96,256,384,384,256",
        fc=4096,
        s2=2,
        p2=0,
        epochs=70,
        batch_size=128,
        lr=1e-2,
    ),  # §3: stopped after 70 epochs
    "gpu": Config(
        image_size=112,
        widths="64,128,192,192,128",
        fc=1024,
        s2=2,
        p2=0,
        epochs=40,
        batch_size=128,
        lr=1e-3,
    ),
}


class SwitchPool(nn.Module):
    """Max-pooling that also returns its switches: where each maximum sat (§2.1)."""

    def __init__(self, kernel=3, stride=2):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x):  # (B, C, H, W)
        return F.max_pool2d(x, self.kernel, self.stride, ceil_mode=True, return_indices=True)


def unpool(y: torch.Tensor, switches: torch.Tensor, size) -> torch.Tensor:
    """§2.1 unpooling: put each pooled value back where its switch says, zeros elsewhere."""
    B, C, h, w = y.shape
    out = y.new_zeros(B, C, size[0] * size[1])  # (B, C, H*W)
    out.scatter_(2, switches.flatten(2), y.flatten(2))  # place values at the recorded maxima
    return out.view(B, C, *size)  # (B, C, H, W)


def contrast_norm(x: torch.Tensor, n: int = 5) -> torch.Tensor:
    """Fig. 3: local contrast normalisation across neighbouring feature maps (AlexNet-style)."""
    return F.local_response_norm(x, n, alpha=1e-4 * n, beta=0.75, k=2.0)


class ZFNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c1, c2, c3, c4, c5 = (int(w) for w in cfg.widths.split(","))
        self.conv1 = nn.Conv2d(cfg.in_channels, c1, 7, stride=2, padding=1)  # 224 -> 110 (Fig. 3)
        self.conv2 = nn.Conv2d(c1, c2, 5, stride=cfg.s2, padding=cfg.p2)  # 55 -> 26
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)  # 13 -> 13, dense (§4.1)
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1)
        self.conv5 = nn.Conv2d(c4, c5, 3, padding=1)
        self.pool = SwitchPool(3, 2)  # 110 -> 55, 26 -> 13, 13 -> 6
        pool = lambda s: -(-(s - 3) // 2) + 1  # ceil_mode output size
        s = pool((pool((cfg.image_size + 2 - 7) // 2 + 1) + 2 * cfg.p2 - 5) // cfg.s2 + 1)
        s = pool(s)
        self.fc6 = nn.Linear(c5 * s * s, cfg.fc)
        self.fc7 = nn.Linear(cfg.fc, cfg.fc)
        self.fc8 = nn.Linear(cfg.fc, cfg.num_classes)  # C-way softmax
        self.drop = nn.Dropout(cfg.dropout)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):  # §3 used N(0, 0.01); fan-in init here
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def layer2(self, x):
        """Layers 1-2 with everything the deconvnet needs: (output, [(pre-pool map, switches) x 2])."""
        a1 = F.relu(self.conv1(x))  # (B, c1, 110, 110)
        p1, s1 = self.pool(a1)  # (B, c1, 55, 55)
        a2 = F.relu(self.conv2(contrast_norm(p1)))  # (B, c2, 26, 26)
        p2, s2 = self.pool(a2)  # (B, c2, 13, 13)
        return contrast_norm(p2), [(a1, s1), (a2, s2)]

    def forward(self, x):  # (B, 3, 224, 224)
        h, _ = self.layer2(x)
        h = F.relu(self.conv5(F.relu(self.conv4(F.relu(self.conv3(h))))))  # (B, c5, 13, 13)
        h = self.pool(h)[0].flatten(1)  # (B, c5 * 6 * 6)
        h = self.drop(F.relu(self.fc6(h)))
        h = self.drop(F.relu(self.fc7(h)))
        return self.fc8(h)  # (B, classes)


@torch.no_grad()
def deconvnet(model: ZFNet, x: torch.Tensor, channel: int) -> torch.Tensor:
    """§2.1: keep only the strongest activation of one conv2 map, send it back down to pixels.

    Contrast normalisation is skipped on the way down, as a simplification.
    """
    _, [(a1, s1), (a2, s2)] = model.layer2(x)
    r = torch.zeros_like(a2)  # (B, c2, H2, W2)
    top = a2[:, channel].flatten(1).argmax(1)  # strongest location per image
    r[:, channel].view(len(x), -1).scatter_(
        1, top[:, None], a2[:, channel].flatten(1).max(1, keepdim=True)[0]
    )
    r = F.relu(r)  # rectify
    (st,), (pad,) = model.conv2.stride[:1], model.conv2.padding[:1]
    r = F.conv_transpose2d(
        r,
        model.conv2.weight,
        stride=st,
        padding=pad,  # transposed conv2 filters
        output_padding=(s1.shape[-1] + 2 * pad - 5) % st,
    )  # back to the pooled size
    r = F.relu(unpool(r, s1, a1.shape[-2:]))  # unpool with the switches, rectify
    r = F.conv_transpose2d(
        r, model.conv1.weight, stride=2, padding=1, output_padding=(x.shape[-1] + 2 - 7) % 2
    )  # transposed conv1 filters
    return r  # (B, in_channels, H, W)


def build_model(cfg: Config) -> nn.Module:
    return ZFNet(cfg)


def load_data(cfg: Config):
    """scikit-learn digits upsampled to image_size, standardised, fixed held-out split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    x = F.interpolate(x, size=(cfg.image_size,) * 2, mode="bilinear", align_corners=False)
    x = ((x - x.mean()) / x.std()).expand(-1, cfg.in_channels, -1, -1).contiguous()
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[: cfg.test_size], perm[cfg.test_size :]
    return x[tr], y[tr], x[te], y[te]


@torch.no_grad()
def accuracy(model, x, y, device, batch=500):
    model.eval()
    hits = sum(
        (model(x[i : i + batch].to(device)).argmax(1).cpu() == y[i : i + batch]).sum().item()
        for i in range(0, len(y), batch)
    )
    return hits / len(y)


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
                loss = F.cross_entropy(model(xb).float(), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    train_s = time.time() - t0
    acc = accuracy(model, x_te, y_te, device)
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
