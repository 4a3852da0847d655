"""ResNet: deep residual learning, and the degradation problem it fixes.

Paper: Deep Residual Learning for Image Recognition (He et al., 2016) https://arxiv.org/abs/1512.03385
Stacking more layers on a plain network makes even its *training* error worse (degradation,
§1, Fig. 1) although batch norm keeps gradients alive. Letting each block learn a residual,
y = F(x, {W_i}) + x (eq. 1), with identity shortcuts makes the deep net easy to optimise.
variant="cifar" (§4.2): 6n+2 layers of basic blocks (two 3x3 convs), identity shortcuts that
zero-pad where the width grows (option A); `paper` is ResNet-110 (1.7M). variant="imagenet"
(Table 1): 7x7 stem, four stages, basic blocks (18, 34 layers) or bottlenecks (1x1 -> 3x3 -> 1x1,
Fig. 5; 50, 101, 152), projections where the shape changes (option B); `paper-imagenet` is
ResNet-50 (25.6M). Tiny: 56-layer CIFAR-style nets on 8x8 digits, the residual net and its plain
twin (no shortcuts, the ablation) trained identically; both are judged by held-out accuracy, and
the plain net must also train worse (degradation is an optimisation gap, not overfitting).
Run: python -m runnable.resnet --preset tiny   (torchrun -m runnable.resnet ... for DDP)
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from functools import partial

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

GATE = ("accuracy", ">=", 0.9)


@dataclass
class Config:
    variant: str = "cifar"  # "cifar" (§4.2, 6n+2 layers) or "imagenet" (Table 1)
    depth: int = 50  # imagenet only: 18, 34, 50, 101 or 152 (Table 1)
    image_size: int = 8  # digits as they come (CIFAR: 32)
    in_channels: int = 1
    num_classes: int = 10
    n: int = 9  # §4.2: 6n + 2 weighted layers (n=9: 56 layers, as in Fig. 1)
    width: int = 8  # first stage's filters, then 2x, 4x ..: CIFAR 16, ImageNet 64
    nets: str = "plain,residual"  # which nets to train (both for the gate)
    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.05  # §4.2: SGD, momentum 0.9, weight decay 1e-4, lr 0.1
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        image_size=32,
        in_channels=3,
        n=18,
        width=16,
        nets="residual",  # ResNet-110
        epochs=164,
        batch_size=128,
        lr=0.1,
    ),
    # §3.4: ImageNet, 224x224 crops, batch 256, lr 0.1 (divided by 10 on plateaus), 60e4 iterations
    "paper-imagenet": Config(
        variant="imagenet",
        depth=50,
        image_size=224,
        in_channels=3,
        num_classes=1000,
        width=64,
        nets="residual",
        epochs=120,
        batch_size=256,
        lr=0.1,
    ),
    "gpu": Config(image_size=32, n=18, width=16, epochs=40, batch_size=128, lr=0.1),
}


def projection(c_in: int, c_out: int, stride: int, used: bool) -> nn.Module | None:
    """Option B (§3.3, eq. 2): y = F(x) + W_s x, W_s a strided 1x1 conv (+ BN) where the shape
    changes (`used`); elsewhere the identity (None)."""
    if used:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class Block(nn.Module):
    """Two 3x3 conv-BN layers; with `residual`, the input is added back before the last ReLU."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int, residual: bool, option: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.residual, self.stride, self.pad = residual, stride, c_out - c_in
        changes = stride > 1 or c_in != c_out
        self.proj = projection(c_in, c_out, stride, residual and option == "B" and changes)

    def shortcut(self, x):
        """Option A (§4.1, §4.2): identity; where the size halves, subsample and zero-pad."""
        if self.proj is not None:
            return self.proj(x)
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]  # (B, C, H/2, W/2)
        return F.pad(x, (0, 0, 0, 0, 0, self.pad)) if self.pad else x  # extra channels are zeros

    def forward(self, x):  # (B, c_in, H, W)
        F_x = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))  # residual function F(x)
        if self.residual:
            F_x = F_x + self.shortcut(x)  # eq. (1): y = F(x) + x
        return F.relu(F_x)  # (B, c_out, H/s, W/s)


class Bottleneck(nn.Module):
    """Fig. 5 (right): 1x1 reduces to w channels, 3x3 at w, 1x1 restores 4w; option B shortcut.
    Stride on the first 1x1 as in the paper's models (torchvision: on the 3x3, same count)."""

    expansion = 4

    def __init__(self, c_in: int, w: int, stride: int, residual: bool):
        super().__init__()
        c_out = self.expansion * w
        self.conv1 = nn.Conv2d(c_in, w, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.conv2 = nn.Conv2d(w, w, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(w)
        self.conv3 = nn.Conv2d(w, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.proj = projection(c_in, c_out, stride, residual and (stride > 1 or c_in != c_out))
        self.residual = residual

    def forward(self, x):  # (B, c_in, H, W)
        F_x = F.relu(self.bn1(self.conv1(x)))  # (B, w, H/s, W/s)
        F_x = F.relu(self.bn2(self.conv2(F_x)))
        F_x = self.bn3(self.conv3(F_x))  # (B, 4w, H/s, W/s)
        if self.residual:
            F_x = F_x + (x if self.proj is None else self.proj(x))  # eq. (1) / eq. (2)
        return F.relu(F_x)


# Table 1: blocks per stage (conv2_x .. conv5_x) and the block each depth uses
BASIC_B = partial(Block, option="B")
STAGES = {
    18: (BASIC_B, (2, 2, 2, 2)),
    34: (BASIC_B, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """A stem, stages of blocks (stride 2 where a stage starts, width x2 per stage), global
    average pooling and a fully connected softmax layer.
    cifar (§4.2): 3x3 conv, 3 stages of n blocks on maps s, s/2, s/4: 6n + 2 weighted layers.
    imagenet (Table 1): 7x7/2 conv (64), 3x3/2 max pool, conv2_x .. conv5_x, 1000-way fc."""

    def __init__(self, cfg: Config, residual: bool):
        super().__init__()
        self.imagenet, w = cfg.variant == "imagenet", cfg.width
        kind, counts = STAGES[cfg.depth] if self.imagenet else (Block, (cfg.n,) * 3)
        k, stride = (7, 2) if self.imagenet else (3, 1)
        self.conv = nn.Conv2d(cfg.in_channels, w, k, stride, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(w)
        blocks, c = [], w
        for stage, n_blocks in enumerate(counts):
            for i in range(n_blocks):
                blocks.append(kind(c, w * 2**stage, 2 if stage > 0 and i == 0 else 1, residual))
                c = blocks[-1].expansion * w * 2**stage
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, cfg.num_classes)
        for m in self.modules():  # He init ([13] in the paper)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):  # cifar | imagenet:
        x = F.relu(self.bn(self.conv(x)))  # (B, w, s, s) | 64x112x112
        if self.imagenet:
            x = F.max_pool2d(x, 3, 2, padding=1)  # (B, 64, 56, 56)
        x = self.blocks(x)  # (B, 4w, s/4, s/4) | 2048x7x7
        return self.fc(x.mean(dim=(2, 3)))  # (B, classes)


def build_model(cfg: Config) -> nn.Module:
    """The residual net (`paper`: ResNet-110, `paper-imagenet`: ResNet-50); train() also builds
    its plain twin, ResNet(cfg, residual=False)."""
    return ResNet(cfg, residual=True)


def load_data(cfg: Config):
    """scikit-learn digits at image_size, zero-mean unit-variance, fixed held-out split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    if cfg.image_size != 8:
        x = F.interpolate(x, size=(cfg.image_size,) * 2, mode="bilinear", align_corners=False)
    x = ((x - x.mean()) / x.std()).expand(-1, cfg.in_channels, -1, -1).contiguous()
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[: cfg.test_size], perm[cfg.test_size :]
    return x[tr], y[tr], x[te], y[te]


def setup_ddp(device: str):
    """Under torchrun (WORLD_SIZE > 1) join the process group: (rank, world size, device)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


@torch.no_grad()
def accuracy(model, x, y, device, batch=500, rank=0, world=1):
    """Each rank scores its share of the examples; hits and counts are summed over the ranks."""
    model.eval()
    x, y = x[rank::world], y[rank::world]
    hits = sum(
        (model(x[i : i + batch].to(device)).argmax(1).cpu() == y[i : i + batch]).sum().item()
        for i in range(0, len(y), batch)
    )
    counts = torch.tensor([hits, len(y)], dtype=torch.float64, device=device)
    if world > 1:
        dist.all_reduce(counts)
    return (counts[0] / counts[1]).item()


def fit(model, cfg: Config, data, device: str, rank: int = 0, world: int = 1) -> dict:
    """One net, trained with a fixed seed so plain and residual see the same batches (every rank
    draws the same batch and keeps its share; DDP averages the gradients)."""
    x_tr, y_tr, x_te, y_te = data
    net = DDP(model) if world > 1 else model
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    g = torch.Generator().manual_seed(cfg.seed)
    history = []  # held-out accuracy per epoch
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            if len(idx) < world:
                continue  # not one example per rank
            xb, yb = x_tr[idx[rank::world]].to(device), y_tr[idx[rank::world]].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = F.cross_entropy(net(xb).float(), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        history.append(accuracy(model, x_te, y_te, device, rank=rank, world=world))
    if world > 1:  # BN statistics are per rank:
        for b in model.buffers():  # take rank 0's, as DDP does
            dist.broadcast(b, 0)
        if os.environ.get("KB_DDP_CHECKSUM"):  # the DDP test compares ranks
            params = b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())
            print(
                f"ddp-params rank={rank} sha256={hashlib.sha256(params).hexdigest()}",
                file=sys.stderr,
                flush=True,
            )
    return {
        "test": history[-1],
        "history": history,
        "train": accuracy(model, x_tr, y_tr, device, rank=rank, world=world),
    }


def train(cfg: Config, device: str = "cpu") -> dict:
    """Train the residual net and its plain twin (cfg.nets) identically; judge both by GATE."""
    t0 = time.time()
    rank, world, device = setup_ddp(device)
    data = load_data(cfg)
    out, history = {"depth": cfg.depth if cfg.variant == "imagenet" else 6 * cfg.n + 2}, {}
    for name in cfg.nets.split(","):
        torch.manual_seed(cfg.seed)  # same initial draw for both
        model = ResNet(cfg, residual=name == "residual").to(device)
        acc = fit(model, cfg, data, device, rank, world)
        out[f"{name}_accuracy"], out[f"{name}_train_accuracy"] = acc["test"], acc["train"]
        out[f"{name}_params"] = sum(p.numel() for p in model.parameters())
        history[name] = acc["history"]
    value, plain = out.get("residual_accuracy", 0.0), out.get("plain_accuracy", 0.0)
    conditions = {
        "plain net trains worse (degradation)": out.get("plain_train_accuracy", 0.0)
        < out.get("residual_train_accuracy", 0.0)
    }
    return {
        "metric": GATE[0],
        "value": value,
        "ablation": {"name": f"plain net, {out['depth']} layers", "value": plain},
        "conditions": conditions,
        "history": {
            "x": "epoch",
            "idea": history.get("residual", []),
            "ablation": history.get("plain", []),
        },
        "passed": value >= GATE[2] and not plain >= GATE[2] and all(conditions.values()),
        "seed": cfg.seed,
        "params": out.get("residual_params", out.get("plain_params")),
        "seconds": round(time.time() - t0, 2),
        "world_size": world,
        **out,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
