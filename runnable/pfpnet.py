"""Parallel Feature Pyramid Network for Object Detection (PFPNet).

Paper: Parallel Feature Pyramid Network for Object Detection (Kim et al., 2018) https://openaccess.thecvf.com/content_ECCV_2018/html/Seung-Wook_Kim_Parallel_Feature_Pyramid_ECCV_2018_paper.html
SSD builds its pyramid by going deeper, so small-object levels are shallow. PFPNet builds it by
going wider: SPP-style pooling of one base feature map gives N scales, each transformed by a
parallel branch of the same depth (similar abstraction at every scale); MSCA modules then resize
the pooled features to each level and concatenate them (multi-scale context aggregation) before
SSD-style box/class heads. Contrast: the same base, branch and head on one coarse map with every
anchor size there (a single-scale detector), on scenes with many small objects.
Run: python -m runnable.pfpnet --preset tiny
"""

import math  # noqa: E401
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from runnable._boxes import box_iou, mean_average_precision, nms
from runnable._shapes import make_scenes

GATE = ("map50", ">=", 0.7)


@dataclass
class Config:
    base: tuple = (8, "m", 24, "m", 48)  # base net: 3x3 conv widths, "m" = 2x2 max-pool (VGG-16)
    N: int = 3  # pyramid levels (4 in PFPNet-S320)
    single_scale: bool = False  # the ablation: only the coarsest level, with all N anchor sizes
    batch_norm: bool = True  # after each conv, to train from scratch (the paper starts from
    # an ImageNet VGG-16)
    C_H: int = 32  # channels of the high-dimensional pooled features F_H
    C_P: int = 32  # channels of each final pyramid level P_n
    aspect_ratios: tuple = (1.0, 2.0, 0.5)
    anchor_scale: float = 2.0  # anchor side = anchor_scale * stride of the level
    n_classes: int = 3  # object classes; class 0 of the head is background
    image_size: int = 48
    side: tuple = (0.15, 0.6)  # object sides, fractions of the image (7-29 px at 48)
    max_objects: int = 4
    n_train: int = 1000
    n_test: int = 300
    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    neg_pos_ratio: int = 3  # SSD hard negative mining
    nms_iou: float = 0.45
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # PFPNet-S320 as far as we read it: VGG-16 to conv4_3, 320 x 320 input, N = 4; widths ours.
    "paper": Config(
        base=(64, 64, "m", 128, 128, "m", 256, 256, 256, "m", 512, 512, 512),
        N=4,
        C_H=512,
        C_P=256,
        batch_norm=False,
        n_classes=20,
        image_size=320,
    ),
    "gpu": Config(
        base=(32, 32, "m", 64, 64, "m", 128, 128),
        N=4,
        C_H=128,
        C_P=128,
        image_size=96,
        n_train=20000,
        n_test=1000,
        epochs=30,
        batch_size=64,
        amp_bf16=True,
    ),
}


def conv(c_in: int, c_out: int, k: int = 3, bn: bool = False) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, padding=k // 2),
        nn.BatchNorm2d(c_out) if bn else nn.Identity(),
        nn.ReLU(inplace=True),
    )


class PFPNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        layers, c = [], 3
        for v in cfg.base:  # VGG-style base network
            layers += [nn.MaxPool2d(2)] if v == "m" else [*conv(c, v, bn=cfg.batch_norm)]
            c = c if v == "m" else v
        self.base, self.N = nn.Sequential(*layers), cfg.N
        self.levels = [cfg.N - 1] if cfg.single_scale else list(range(cfg.N))
        L = len(self.levels)
        C_L = cfg.C_H // max(L - 1, 1)  # sec. 3.2: C_L = C_H / (N - 1); widened, not deepened
        bn = cfg.batch_norm
        self.bottleneck = nn.ModuleList(conv(c, cfg.C_H, bn=bn) for _ in range(L))
        self.reduce = nn.ModuleList(conv(cfg.C_H, C_L, 1, bn) for _ in range(L))
        self.msca = nn.ModuleList(conv(cfg.C_H + (L - 1) * C_L, cfg.C_P, bn=bn) for _ in range(L))
        A = len(cfg.aspect_ratios) * (cfg.N if cfg.single_scale else 1)  # anchors per position
        self.K = cfg.n_classes + 1  # SSD heads: K scores, 4 offsets
        self.cls_head = nn.ModuleList(
            nn.Conv2d(cfg.C_P, A * self.K, 3, padding=1) for _ in range(L)
        )
        self.box_head = nn.ModuleList(nn.Conv2d(cfg.C_P, A * 4, 3, padding=1) for _ in range(L))

    def forward(self, x):  # (B, 3, H, W)
        f = self.base(x)  # (B, D, W0, W0)
        f_P = [F.max_pool2d(f, 2**n) if n else f for n in self.levels]  # SPP: sizes W0 / 2^n
        F_H = [b(p) for b, p in zip(self.bottleneck, f_P)]  # (B, C_H, W0/2^n, .)
        F_L = [r(h) for r, h in zip(self.reduce, F_H)]  # (B, C_L, W0/2^n, .)
        cls, box = [], []
        for n in range(len(self.levels)):
            size = F_H[n].shape[-2:]
            ctx = [
                F.interpolate(F_L[m], size=size, mode="bilinear")
                if m > n  # coarser: up-sample
                else F.adaptive_max_pool2d(F_L[m], size)  # finer: pool
                for m in range(len(self.levels))
                if m != n
            ]
            P_n = self.msca[n](torch.cat([F_H[n], *ctx], 1))  # MSCA: F_H^n with resized F_L^m
            for out, head, d in ((cls, self.cls_head[n], self.K), (box, self.box_head[n], 4)):
                out.append(head(P_n).permute(0, 2, 3, 1).flatten(1).unflatten(1, (-1, d)))
        return torch.cat(cls, 1), torch.cat(box, 1)  # (B, n_anchors, K), (., ., 4)


def build_model(cfg: Config) -> nn.Module:
    return PFPNet(cfg)


def make_anchors(cfg: Config) -> torch.Tensor:
    """Anchors (x1, y1, x2, y2) in pixels, in the heads' order: level, row, column, anchor."""
    stride0, out = 2 ** cfg.base.count("m"), []
    levels = [cfg.N - 1] if cfg.single_scale else range(cfg.N)
    for n in levels:
        s = stride0 * 2**n
        sides = (
            [cfg.anchor_scale * stride0 * 2**m for m in range(cfg.N)]
            if cfg.single_scale
            else [cfg.anchor_scale * s]
        )
        side, c = cfg.image_size // s, (torch.arange(cfg.image_size // s) + 0.5) * s
        cy, cx = torch.meshgrid(c, c, indexing="ij")
        wh = torch.tensor(
            [[a_s * math.sqrt(a), a_s / math.sqrt(a)] for a_s in sides for a in cfg.aspect_ratios]
        ).expand(side, side, -1, -1)  # (., ., A, 2)
        ctr = torch.stack([cx, cy], -1)[:, :, None].expand_as(wh)
        out.append(torch.cat([ctr - wh / 2, ctr + wh / 2], -1).reshape(-1, 4))
    return torch.cat(out)


def encode(boxes, anchors):  # SSD coding, variances 0.1, 0.2
    wh_a, c_a = anchors[..., 2:] - anchors[..., :2], (anchors[..., 2:] + anchors[..., :2]) / 2
    wh, c = boxes[..., 2:] - boxes[..., :2], (boxes[..., 2:] + boxes[..., :2]) / 2
    return torch.cat([(c - c_a) / wh_a / 0.1, (wh / wh_a).log() / 0.2], -1)


def decode(t, anchors):
    wh_a, c_a = anchors[..., 2:] - anchors[..., :2], (anchors[..., 2:] + anchors[..., :2]) / 2
    c, wh = c_a + t[..., :2] * 0.1 * wh_a, wh_a * (t[..., 2:] * 0.2).clamp(max=4).exp()
    return torch.cat([c - wh / 2, c + wh / 2], -1)


def match(boxes, labels, anchors, threshold=0.5):
    """Each anchor takes its best ground truth if IoU >= 0.5; each ground truth its best anchor."""
    iou = box_iou(boxes[:, None], anchors[None])  # (G, n_anchors)
    best, gt = iou.max(0)
    best[iou.argmax(1)] = 1.0
    gt[iou.argmax(1)] = torch.arange(len(boxes))
    return torch.where(best >= threshold, labels[gt] + 1, 0), encode(boxes[gt], anchors)


def multibox_loss(cls, box, t_cls, t_box, neg_pos_ratio: int):
    """SSD loss: softmax CE with 3:1 hard negative mining + smooth L1 on positives, / n_pos."""
    pos = t_cls > 0  # (B, n_anchors)
    ce = F.cross_entropy(cls.flatten(0, 1), t_cls.flatten(), reduction="none").view_as(t_cls)
    rank = ce.detach().masked_fill(pos, -1).argsort(1, descending=True).argsort(1)
    hard_neg = rank < neg_pos_ratio * pos.sum(1, keepdim=True)
    L_loc = F.smooth_l1_loss(box[pos], t_box[pos], reduction="sum")  # on positives only
    return ((ce * (pos | hard_neg)).sum() + L_loc) / pos.sum().clamp(min=1)


def detect(cls, box, anchors, cfg: Config):
    """Per image and class: the top 50 anchors by score, decoded, then NMS."""
    dets = []
    for p, t in zip(cls.softmax(-1), box):
        bx, sc, lb = [], [], []
        for c in range(cfg.n_classes):
            score, m = p[:, c + 1].topk(min(50, len(p)))
            score, b = score[score > 0.01], decode(t[m], anchors[m])[score > 0.01]
            keep = nms(b, score, cfg.nms_iou)
            bx.append(b[keep]), sc.append(score[keep]), lb.append(torch.full((len(keep),), c))
        dets.append((torch.cat(bx), torch.cat(sc), torch.cat(lb)))
    return dets


def fit(cfg: Config, train_set, test_set, device: str):
    """Train one detector; held-out mAP@0.5 after a few epochs."""
    torch.manual_seed(cfg.seed)
    x, anchors = train_set.images, make_anchors(cfg)
    t_cls, t_box = map(
        torch.stack,
        zip(*(match(b, lb, anchors) for b, lb in zip(train_set.boxes, train_set.labels))),
    )
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # NHWC: faster on CPU
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    history, every, gts = [], max(1, cfg.epochs // 4), list(zip(test_set.boxes, test_set.labels))
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for idx in torch.randperm(cfg.n_train).split(cfg.batch_size):
            with torch.autocast(**amp):
                cls, box = model(x[idx].to(device, memory_format=torch.channels_last))
            loss = multibox_loss(
                cls.float(),
                box.float(),
                t_cls[idx].to(device),
                t_box[idx].to(device),
                cfg.neg_pos_ratio,
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % every == 0 or epoch == cfg.epochs:
            model.eval()
            with torch.no_grad(), torch.autocast(**amp):
                out = [model(xt.to(device)) for xt in test_set.images.split(256)]
            cls, box = (torch.cat([o[k].float().cpu() for o in out]) for k in (0, 1))
            history.append(
                mean_average_precision(detect(cls, box, anchors, cfg), gts, cfg.n_classes)
            )
    return model, history, loss.item()


def train(cfg: Config, device: str = "cpu") -> dict:
    start, S = time.perf_counter(), cfg.image_size
    scenes = [
        make_scenes(n, S, seed, cfg.n_classes, cfg.side, max_objects=cfg.max_objects)
        for n, seed in ((cfg.n_train, cfg.seed + 1), (cfg.n_test, cfg.seed + 2))
    ]  # held out
    model, history, final_loss = fit(replace(cfg, single_scale=False), *scenes, device)
    _, history_single, _ = fit(replace(cfg, single_scale=True), *scenes, device)
    value, ablation = history[-1], history_single[-1]
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2] and not ablation >= GATE[2],
        "ablation": {
            "name": "single-scale head (coarsest map, all anchor sizes)",
            "value": ablation,
        },
        "conditions": {},
        "history": {"x": "epoch", "idea": history, "ablation": history_single},
        "final_loss": final_loss,
        "seed": cfg.seed,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": time.perf_counter() - start,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
