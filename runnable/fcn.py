"""Fully Convolutional Networks for Semantic Segmentation (FCN-8s against FCN-32s).

Paper: Fully Convolutional Networks for Semantic Segmentation (Long et al., 2015) https://arxiv.org/abs/1411.4038
A classification net becomes fully convolutional (fc6/fc7 as convolutions), so it outputs a coarse
score map for any input size. Learned upsampling (ConvTranspose initialised to bilinear) brings it
back to pixels, and skip connections fuse the coarse semantic scores with finer pool4/pool3 scores
(FCN-8s, sec. 4.2). Contrast: the same net without skips (FCN-32s) on scenes whose classes differ
by shape only (colours are random), scored by mean IU on held-out scenes.
Run: python -m runnable.fcn --preset tiny
"""

import math  # noqa: E401
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from runnable._shapes import make_scenes

GATE = ("mean-iu", ">=", 0.55)


@dataclass
class Config:
    stages: tuple = ((1, 16), (1, 32), (1, 48), (1, 64), (1, 64))  # (convs, width) + a 2x2 pool
    fc_width: int = 96  # fc6/fc7 width (4096 in the paper)
    fc6_kernel: int = 3  # fc6 as a k x k convolution (7 in VGG-16)
    skips: bool = True  # FCN-8s; False: FCN-32s, the ablation
    batch_norm: bool = True  # after each conv, to train from scratch (the paper fine-tunes
    # an ImageNet VGG-16 instead)
    n_classes: int = 4  # background + rectangle, triangle, cross (21 for PASCAL VOC)
    image_size: int = 32
    side: tuple = (0.3, 0.6)  # object sides, fractions of the image
    n_train: int = 1500
    n_test: int = 300
    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    dropout: float = 0.0  # 0.5 after fc6/fc7 in the paper
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        stages=((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
        fc_width=4096,
        fc6_kernel=7,
        batch_norm=False,
        n_classes=21,
        image_size=224,
        dropout=0.5,
        epochs=12,
    ),
    "gpu": Config(
        stages=((2, 32), (2, 64), (2, 128), (2, 256), (2, 256)),
        fc_width=512,
        image_size=64,
        n_train=20000,
        n_test=1000,
        epochs=30,
        batch_size=64,
        amp_bf16=True,
    ),
}


def bilinear_kernel(channels: int, k: int) -> torch.Tensor:
    """Sec. 3.3: deconvolution filters initialised to bilinear interpolation, one per class."""
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    r = torch.arange(k, dtype=torch.float32)
    f1 = 1 - (r - centre).abs() / factor  # (k,)
    w = torch.zeros(channels, channels, k, k)
    w[range(channels), range(channels)] = f1[:, None] * f1[None, :]
    return w


def upsampler(C: int, factor: int) -> nn.ConvTranspose2d:
    """Sec. 3.3: in-network upsampling by `factor`, a backwards convolution (bilinear at start)."""
    d = nn.ConvTranspose2d(C, C, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    if d.weight.device.type != "meta":
        with torch.no_grad():
            d.weight.copy_(bilinear_kernel(C, 2 * factor))
    return d


class FCN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c_in, self.blocks, self.skips = 3, nn.ModuleList(), cfg.skips
        for n_conv, width in cfg.stages:  # VGG blocks: 3x3 convs, pool
            layers = []
            for _ in range(n_conv):
                layers += [
                    nn.Conv2d(c_in, width, 3, padding=1),
                    nn.BatchNorm2d(width) if cfg.batch_norm else nn.Identity(),
                    nn.ReLU(inplace=True),
                ]
                c_in = width
            self.blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        k, C, D = cfg.fc6_kernel, cfg.n_classes, cfg.dropout
        self.fc = nn.Sequential(  # sec. 3.1: fc6, fc7 as convs
            nn.Conv2d(c_in, cfg.fc_width, k, padding=k // 2),
            nn.ReLU(inplace=True),
            nn.Dropout2d(D),
            nn.Conv2d(cfg.fc_width, cfg.fc_width, 1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(D),
        )
        self.score_fr = nn.Conv2d(cfg.fc_width, C, 1)
        stride = 2 ** len(cfg.stages)  # 32 for five pools
        if not cfg.skips:  # FCN-32s: one 32x upsampling
            self.upscore = upsampler(C, stride)
            return
        self.score_pool4 = nn.Conv2d(cfg.stages[-2][1], C, 1)  # sec. 4.2: 1x1 skip predictors
        self.score_pool3 = nn.Conv2d(cfg.stages[-3][1], C, 1)
        for s in (self.score_pool4, self.score_pool3):  # zero: starts as FCN-32s
            nn.init.zeros_(s.weight), nn.init.zeros_(s.bias)
        self.upscore2, self.upscore_pool4 = upsampler(C, 2), upsampler(C, 2)
        self.upscore8 = upsampler(C, stride // 4)

    def forward(self, x):  # (B, 3, H, W)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        score = self.score_fr(self.fc(x))  # (B, C, H/32, W/32)
        if not self.skips:
            return self.upscore(score)  # (B, C, H, W)
        pool3, pool4 = feats[-3], feats[-2]  # (B, ., H/8, .), (B, ., H/16, .)
        score = self.upscore2(score) + self.score_pool4(pool4)  # fuse at stride 16 (FCN-16s)
        score = self.upscore_pool4(score) + self.score_pool3(pool3)  # fuse at stride 8 (FCN-8s)
        return self.upscore8(score)  # (B, C, H, W)


def build_model(cfg: Config) -> nn.Module:
    return FCN(cfg)


def mean_iu(confusion: torch.Tensor) -> float:
    """Sec. 5: mean IU = (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)."""
    n_ii = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - n_ii
    return (n_ii[union > 0] / union[union > 0]).mean().item()


def evaluate(model, x, y, C: int, device: str, amp: dict) -> torch.Tensor:
    """Confusion matrix (rows: truth, columns: prediction) of per-pixel argmax labels."""
    model.eval()
    confusion = torch.zeros(C, C, dtype=torch.long)
    with torch.no_grad(), torch.autocast(**amp):
        for idx in torch.arange(len(x)).split(256):
            pred = model(x[idx].to(device)).argmax(1).cpu()
            confusion += torch.bincount(
                y[idx].flatten() * C + pred.flatten(), minlength=C * C
            ).view(C, C)
    model.train()
    return confusion


def fit(cfg: Config, data, device: str):
    """Train one FCN on data = (x, y, xt, yt); mean IU on the held-out split after some epochs."""
    torch.manual_seed(cfg.seed)
    x, y, xt, yt = data
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # NHWC: faster on CPU
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    history, every = [], max(1, cfg.epochs // 4)
    for epoch in range(1, cfg.epochs + 1):
        for idx in torch.randperm(cfg.n_train).split(cfg.batch_size):
            with torch.autocast(**amp):
                logits = model(x[idx].to(device, memory_format=torch.channels_last))  # (B, C, H, W)
            loss = F.cross_entropy(logits.float(), y[idx].to(device))  # per-pixel logistic loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % every == 0 or epoch == cfg.epochs:
            history.append(evaluate(model, xt, yt, cfg.n_classes, device, amp))
    return model, history


def train(cfg: Config, device: str = "cpu") -> dict:
    start, S = time.perf_counter(), cfg.image_size
    train_set, test_set = (
        make_scenes(n, S, seed, cfg.n_classes - 1, cfg.side)
        for n, seed in ((cfg.n_train, cfg.seed + 1), (cfg.n_test, cfg.seed + 2))
    )
    data = train_set.images, train_set.label_map(), test_set.images, test_set.label_map()
    model, history = fit(replace(cfg, skips=True), data, device)  # FCN-8s
    _, history_32s = fit(replace(cfg, skips=False), data, device)  # FCN-32s, no skips
    value, ablation = mean_iu(history[-1]), mean_iu(history_32s[-1])
    passed = value >= GATE[2] and not ablation >= GATE[2]
    return {
        "metric": GATE[0],
        "value": value,
        "passed": passed,
        "ablation": {"name": "FCN-32s (no skips)", "value": ablation},
        "conditions": {},
        "history": {
            "x": "epoch",
            "idea": [mean_iu(c) for c in history],
            "ablation": [mean_iu(c) for c in history_32s],
        },
        "pixel_accuracy": (history[-1].diag().sum() / history[-1].sum()).item(),
        "seed": cfg.seed,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": time.perf_counter() - start,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
