"""Feature Pyramid Networks: a top-down pathway with lateral connections, used by a region proposal network.

Paper: Feature Pyramid Networks for Object Detection (Lin et al., 2017) https://arxiv.org/abs/1612.03144
A ConvNet's bottom-up stages C2..C5 are strong in semantics only at the coarse top. FPN (sec. 3) adds a
top-down pathway: the coarser map is upsampled 2x (nearest neighbour) and added to a 1x1 "lateral"
projection of the bottom-up map of the same size; a 3x3 conv smooths each sum, giving P2..P5 of d channels,
all semantically strong. One RPN head (3x3 conv + sibling 1x1s) is shared by every level, each level
having anchors of a single size (sec. 4.1). Here: generated shapes of sides 5-40 px in 64 x 64 images.
Gate: proposal recall (IoU >= 0.5, 10 proposals per image) on held-out images >= 0.5; tiny reaches ~0.66
(small objects ~0.56), while mode="top" (one map from C5 with all anchor sizes, cf. Table 1 (b)) gets ~0.16.
Run: python -m runnable.fpn --preset tiny
"""

import math  # noqa: E401
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runnable._boxes import box_iou, nms_mask
from runnable._shapes import make_scenes

GATE = ("recall-at-10", ">=", 0.5)


@dataclass
class Config:
    stages: tuple = (
        8,
        16,
        24,
        32,
    )  # widths of C2..C5, each stage 2x coarser (ResNet-50: 256..2048)
    blocks: int = 1  # 3x3 convs per stage (ResNet-50: 3, 4, 6, 3 bottleneck blocks)
    stem_stride: int = 2  # stride of C2 (4 in the paper; 2 here so that 5-px objects stay visible)
    d: int = 16  # channels of every P level (256 in the paper)
    anchor_scale: float = (
        4.0  # anchor side = anchor_scale * stride of the level (32..512 px = 8 x stride)
    )
    ratios: tuple = (0.5, 1.0, 2.0)
    mode: str = "fpn"  # "fpn": P2..P5; "top": a single map from C5 with anchors of every size
    rpn_batch: int = 64  # anchors sampled per image, <= half positive (256)
    pre_nms: int = 100  # proposals kept by score before NMS at IoU 0.7
    n_proposals: int = 10  # proposals per image scored by the gate
    image_size: int = 64
    n_train: int = 500
    n_test: int = 200
    epochs: int = 8
    batch_size: int = 32
    lr: float = 4e-3
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    # Sec. 4.1: ResNet-50 widths per stage, d = 256, anchors 32^2..512^2 (8 x stride; P6 omitted here), 800 px.
    "paper": Config(
        stages=(256, 512, 1024, 2048),
        blocks=2,
        stem_stride=4,
        d=256,
        anchor_scale=8.0,
        rpn_batch=256,
        pre_nms=2000,
        n_proposals=1000,
        image_size=800,
        batch_size=2,
    ),
    "gpu": Config(
        stages=(32, 64, 128, 256),
        blocks=2,
        d=128,
        image_size=128,
        n_train=20000,
        n_test=1000,
        epochs=20,
        batch_size=64,
        lr=2e-3,
        n_proposals=20,
    ),
}


def conv_bn(c_in, c_out, stride=1):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def upsample2x(x):
    """Sec. 3: nearest-neighbour upsampling by a factor of 2: every cell becomes a 2 x 2 block."""
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)  # (B, d, 2H, 2W)


class FPN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg, c = cfg, cfg.stages[0]
        self.stem = nn.Sequential(
            *[conv_bn(3 if i == 0 else c, c, 2) for i in range(int(math.log2(cfg.stem_stride)))]
        )
        self.stages, c_in = nn.ModuleList(), c
        for i, c in enumerate(cfg.stages):  # bottom-up pathway: C2 .. C5
            self.stages.append(
                nn.Sequential(
                    conv_bn(c_in, c, 1 if i == 0 else 2),
                    *[conv_bn(c, c) for _ in range(cfg.blocks - 1)],
                )
            )
            c_in = c
        levels = cfg.stages if cfg.mode == "fpn" else cfg.stages[-1:]
        self.lateral = nn.ModuleList(
            nn.Conv2d(c, cfg.d, 1) for c in levels
        )  # 1x1 lateral connections
        self.smooth = nn.ModuleList(
            nn.Conv2d(cfg.d, cfg.d, 3, padding=1) for _ in levels
        )  # 3x3 on each merged map
        self.k = len(cfg.ratios) * (
            1 if cfg.mode == "fpn" else len(cfg.stages)
        )  # anchors per position
        self.rpn_conv = nn.Conv2d(
            cfg.d, cfg.d, 3, padding=1
        )  # the head shared by all levels (sec. 4.1)
        self.rpn_cls = nn.Conv2d(cfg.d, self.k, 1)  # objectness logit per anchor
        self.rpn_reg = nn.Conv2d(cfg.d, 4 * self.k, 1)  # eq. 2 of Faster R-CNN per anchor

    def pyramid(self, x):  # (B, 3, S, S) -> [P2, P3, P4, P5] or [P5]
        C, h = [], self.stem(x)
        for stage in self.stages:
            h = stage(h)
            C.append(h)  # C_l: (B, c_l, S / stride_l, S / stride_l)
        C = C if self.cfg.mode == "fpn" else C[-1:]
        P = [self.lateral[-1](C[-1])]  # the coarsest map starts the top-down path
        for lat, c in zip(reversed(self.lateral[:-1]), reversed(C[:-1])):
            P.insert(
                0, upsample2x(P[0]) + lat(c)
            )  # top-down 2x upsample + lateral 1x1, element-wise sum
        return [s(p) for s, p in zip(self.smooth, P)]  # 3x3 conv reduces the aliasing of upsampling

    def forward(self, x):  # -> (B, A, 1) logits, (B, A, 4) deltas, A anchors
        cls, reg = [], []
        for p in self.pyramid(x):
            h = F.relu(self.rpn_conv(p))
            cls.append(self.rpn_cls(h).permute(0, 2, 3, 1).flatten(1)[..., None])
            reg.append(self.rpn_reg(h).permute(0, 2, 3, 1).flatten(1).unflatten(1, (-1, 4)))
        return torch.cat(cls, 1), torch.cat(reg, 1)


def build_model(cfg: Config) -> nn.Module:
    return FPN(cfg)


def make_anchors(cfg: Config) -> torch.Tensor:
    """Anchors (x1, y1, x2, y2) in the heads' order: level, row, column, anchor."""
    out, strides = [], [cfg.stem_stride * 2**i for i in range(len(cfg.stages))]
    for stride in strides if cfg.mode == "fpn" else strides[-1:]:
        sides = (
            [cfg.anchor_scale * stride]
            if cfg.mode == "fpn"
            else [cfg.anchor_scale * s for s in strides]
        )
        cy, cx = torch.meshgrid(
            *[(torch.arange(cfg.image_size // stride) + 0.5) * stride] * 2, indexing="ij"
        )
        wh = torch.tensor(
            [[s / math.sqrt(r), s * math.sqrt(r)] for s in sides for r in cfg.ratios]
        )  # area s^2
        ctr = torch.stack([cx, cy], -1)[:, :, None]  # (H, W, 1, 2)
        out.append(torch.cat([ctr - wh / 2, ctr + wh / 2], -1).reshape(-1, 4))
    return torch.cat(out)


def encode(boxes, anchors):  # Faster R-CNN eq. 2
    (c_a, wh_a), (c, wh) = [
        ((b[..., 2:] + b[..., :2]) / 2, b[..., 2:] - b[..., :2]) for b in (anchors, boxes)
    ]
    return torch.cat([(c - c_a) / wh_a, (wh / wh_a).log()], -1)


def decode(t, anchors):
    c_a, wh_a = (anchors[..., 2:] + anchors[..., :2]) / 2, anchors[..., 2:] - anchors[..., :2]
    c, wh = c_a + t[..., :2] * wh_a, wh_a * t[..., 2:].clamp(max=4).exp()
    return torch.cat([c - wh / 2, c + wh / 2], -1)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    # 1-4 apart shapes in random colours, sqrt(area) log-uniform in 5-40 px (at 64 px), aspect <= 1.6
    scenes = [
        make_scenes(n, cfg.image_size, seed, side=(5 / 64, 40 / 64), max_objects=4)
        for n, seed in ((cfg.n_train, cfg.seed + 1), (cfg.n_test, cfg.seed + 2))
    ]
    (x, (gt, lab)), (xt, (gt_t, lab_t)) = ((s.images, s.padded(4)) for s in scenes)  # held out
    valid, valid_t = lab >= 0, lab_t >= 0
    anchors = make_anchors(cfg)
    iou = box_iou(anchors[None, :, None], gt[:, None]).masked_fill(~valid[:, None], -1)  # (N, A, G)
    best, j = iou.max(2)
    best = torch.where(
        ((iou == iou.amax(1, keepdim=True)) & (iou > 0.1)).any(2), 1.0, best
    )  # each gt's best anchor
    label = torch.where(
        best >= 0.7, 1, torch.where(best < 0.3, 0, -1)
    )  # Faster R-CNN sec. 3.1.2 (-1: ignored)
    t_reg = encode(gt.gather(1, j[..., None].expand(-1, -1, 4)), anchors)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)  # paper: SGD, momentum 0.9
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.lr, cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size), pct_start=0.2
    )
    amp, start = (
        dict(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")),
        time.perf_counter(),
    )
    for idx in (
        i for _ in range(cfg.epochs) for i in torch.randperm(cfg.n_train).split(cfg.batch_size)
    ):
        lab, r = (
            label[idx],
            torch.rand(len(idx), len(anchors)),
        )  # sample rpn_batch anchors, <= half positive
        p_r, p_i = torch.where(lab == 1, r, -1.0).topk(cfg.rpn_batch // 2, 1)
        n_r, n_i = torch.where(lab == 0, r, -1.0).topk(cfg.rpn_batch, 1)
        quota = torch.arange(cfg.rpn_batch) < cfg.rpn_batch - (p_r >= 0).sum(1, keepdim=True)
        pos = torch.zeros(lab.shape).scatter_add_(1, p_i, (p_r >= 0).float()) > 0
        use = pos | (torch.zeros(lab.shape).scatter_add_(1, n_i, ((n_r >= 0) & quota).float()) > 0)
        with torch.autocast(**amp):
            cls, reg = (o.float() for o in model(x[idx].to(device)))
        use, pos = use.to(device), pos.to(device)
        loss = (
            F.binary_cross_entropy_with_logits(cls[..., 0][use], pos[use].float())
            + F.smooth_l1_loss(reg[pos], t_reg[idx].to(device)[pos], reduction="sum") / use.sum()
        )  # L_cls + lambda L_reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad(), torch.autocast(**amp):
        cls, reg = (o.float().cpu() for o in model(xt.to(device)))
    score, i = cls[..., 0].topk(
        min(cfg.pre_nms, len(anchors)), 1
    )  # merge all levels, top scores, NMS at 0.7
    boxes = decode(reg, anchors).clamp(0, cfg.image_size).gather(1, i[..., None].expand(-1, -1, 4))
    top = (
        torch.where(nms_mask(boxes, score, 0.7), score, -math.inf).topk(cfg.n_proposals, 1).indices
    )
    props = boxes.gather(1, top[..., None].expand(-1, -1, 4))  # (n_test, n_proposals, 4)
    hit = (box_iou(props[:, :, None], gt_t[:, None]).amax(1) >= 0.5)[
        valid_t
    ]  # per valid ground-truth box
    side = (gt_t[..., 2:] - gt_t[..., :2]).prod(-1).sqrt()[valid_t]
    value = hit.float().mean().item()
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "recall_small": hit[side < 12].float().mean().item(),
        "recall_large": hit[side >= 24].float().mean().item(),
        "final_loss": loss.item(),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": seconds,
        "images_per_s": cfg.epochs * cfg.n_train / seconds,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
