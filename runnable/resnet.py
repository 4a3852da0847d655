"""ResNet: deep residual learning, and the degradation problem it fixes.

Paper: Deep Residual Learning for Image Recognition (He et al., 2016) https://arxiv.org/abs/1512.03385
Stacking more layers on a plain network makes even its *training* error worse (degradation,
§1, Fig. 1) although batch norm keeps gradients alive. Letting each block learn a residual,
y = F(x, {W_i}) + x (eq. 1), with identity shortcuts makes the deep net easy to optimise.
Tiny: the CIFAR-style 6n+2 nets of §4.2 (narrow) on 8x8 digits; a plain and a residual net of
the same depth are trained identically (same seed, data order, optimiser). The gate metric is
residual-minus-plain = residual accuracy - plain accuracy on the held-out digits; the run also
needs the residual net itself to reach RESIDUAL_FLOOR held-out accuracy, so a pass means the
residual net learned the task and the plain one of equal depth fell clearly behind. In 4 epochs the
plain net barely learns at all, a far wider gap than Fig. 1's: the gate shows the direction only.
Run: python -m runnable.resnet --preset tiny   (data parallel: torchrun --nproc_per_node=N -m runnable.resnet --preset gpu --device cuda)
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

GATE = ("residual-minus-plain", ">=", 0.20)
RESIDUAL_FLOOR = 0.95                # the residual net's own held-out accuracy must reach this


@dataclass
class Config:
    image_size: int = 8              # digits as they come (CIFAR: 32)
    in_channels: int = 1
    num_classes: int = 10
    n: int = 9                       # §4.2: 6n + 2 weighted layers (n=9: 56 layers, as in Fig. 1)
    width: int = 8                   # first stage's filters; then 2x, 4x (paper: 16)
    nets: str = "plain,residual"     # which nets to train (both for the gate)
    epochs: int = 4
    batch_size: int = 64
    lr: float = 0.05                 # §4.2: SGD, momentum 0.9, weight decay 1e-4, lr 0.1
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(image_size=32, in_channels=3, n=18, width=16, nets="residual",  # ResNet-110
                    epochs=164, batch_size=128, lr=0.1),
    "gpu": Config(image_size=32, n=18, width=16, epochs=40, batch_size=128, lr=0.1),
}


class Block(nn.Module):
    """Two 3x3 conv-BN layers; with `residual`, the input is added back before the last ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, residual: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.residual, self.stride, self.pad = residual, stride, c_out - c_in

    def shortcut(self, x):
        """Option A (§4.1, §4.2): identity; when the size halves, subsample and zero-pad channels."""
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]                 # (B, C, H/2, W/2)
        return F.pad(x, (0, 0, 0, 0, 0, self.pad)) if self.pad else x  # extra channels are zeros

    def forward(self, x):                                             # (B, c_in, H, W)
        F_x = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))  # residual function F(x, {W_i})
        if self.residual:
            F_x = F_x + self.shortcut(x)                              # eq. (1): y = F(x) + x
        return F.relu(F_x)                                            # (B, c_out, H/stride, W/stride)


class CifarNet(nn.Module):
    """§4.2: 3x3 conv, then 3 stages of 2n layers on maps of size s, s/2, s/4 with widths w, 2w, 4w,
    global average pooling and a fully connected softmax layer: 6n + 2 weighted layers."""

    def __init__(self, cfg: Config, residual: bool):
        super().__init__()
        w = cfg.width
        self.conv = nn.Conv2d(cfg.in_channels, w, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(w)
        blocks, c = [], w
        for stage, c_out in enumerate((w, 2 * w, 4 * w)):
            for i in range(cfg.n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(Block(c, c_out, stride, residual))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, cfg.num_classes)
        for m in self.modules():                                      # He init ([13] in the paper)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):                                             # (B, C, s, s)
        x = self.blocks(F.relu(self.bn(self.conv(x))))                # (B, 4w, s/4, s/4)
        return self.fc(x.mean(dim=(2, 3)))                            # (B, classes)


def build_model(cfg: Config) -> nn.Module:
    """The residual net (the paper preset is ResNet-110); train() also builds the plain twin."""
    return CifarNet(cfg, residual=True)


def load_data(cfg: Config):
    """scikit-learn digits at image_size, zero-mean unit-variance, fixed held-out split."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0   # (N, 1, 8, 8)
    if cfg.image_size != 8:
        x = F.interpolate(x, size=(cfg.image_size,) * 2, mode="bilinear", align_corners=False)
    x = ((x - x.mean()) / x.std()).expand(-1, cfg.in_channels, -1, -1).contiguous()
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[:cfg.test_size], perm[cfg.test_size:]
    return x[tr], y[tr], x[te], y[te]


def setup_ddp(device: str):
    """Under torchrun (WORLD_SIZE > 1) join the process group: returns (rank, world size, device)."""
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
    hits = sum((model(x[i:i + batch].to(device)).argmax(1).cpu() == y[i:i + batch]).sum().item()
               for i in range(0, len(y), batch))
    counts = torch.tensor([hits, len(y)], dtype=torch.float64, device=device)
    if world > 1:
        dist.all_reduce(counts)
    return (counts[0] / counts[1]).item()


def fit(model, cfg: Config, data, device: str, rank: int = 0, world: int = 1) -> dict:
    """One net, trained with a fixed seed so plain and residual see the same batches (every rank draws
    the same batch and keeps its share; DDP averages the gradients)."""
    x_tr, y_tr, x_te, y_te = data
    net = DDP(model) if world > 1 else model
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(y_tr), generator=g).split(cfg.batch_size):
            if len(idx) < world:
                continue                                              # too small to give every rank an example
            xb, yb = x_tr[idx[rank::world]].to(device), y_tr[idx[rank::world]].to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = F.cross_entropy(net(xb).float(), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    if world > 1:                                                     # batch-norm statistics are per rank:
        for b in model.buffers():                                     # take rank 0's, as DDP does each step
            dist.broadcast(b, 0)
        if os.environ.get("KB_DDP_CHECKSUM"):                         # lets the DDP test compare the ranks
            digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters()))
            print(f"ddp-params rank={rank} sha256={digest.hexdigest()}", file=sys.stderr, flush=True)
    return {"test": accuracy(model, x_te, y_te, device, rank=rank, world=world),
            "train": accuracy(model, x_tr, y_tr, device, rank=rank, world=world)}


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.time()
    rank, world, device = setup_ddp(device)
    data = load_data(cfg)
    out = {"depth": 6 * cfg.n + 2}
    for name in cfg.nets.split(","):
        torch.manual_seed(cfg.seed)                                   # same initial draw for both
        model = CifarNet(cfg, residual=name == "residual").to(device)
        acc = fit(model, cfg, data, device, rank, world)
        out[f"{name}_accuracy"], out[f"{name}_train_accuracy"] = acc["test"], acc["train"]
        out[f"{name}_params"] = sum(p.numel() for p in model.parameters())
    res, plain = out.get("residual_accuracy", 0.0), out.get("plain_accuracy", 0.0)
    value = res - plain
    return {"metric": GATE[0], "value": value,
            "passed": value >= GATE[2] and res >= RESIDUAL_FLOOR,
            "params": out.get("residual_params", out.get("plain_params")),
            "seconds": round(time.time() - t0, 2), "world_size": world, **out}


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
    if not dist.is_initialized() or dist.get_rank() == 0:            # one report, from rank 0
        print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
