"""Faster R-CNN: a region proposal network and a RoI-pooling detector sharing one conv backbone.

Paper: Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks (Ren et al., 2015) https://arxiv.org/abs/1506.01497
A small net slides a 3x3 window over the shared conv features, scoring k = 9 anchors (3 scales x 3 ratios)
per position as object / not object and regressing each to a box (sec. 3.1, eq. 1-2). The top proposals after
NMS are RoI-max-pooled from the same features and classified into K classes + background, boxes refined per class.
Gate: detection mAP@0.5 >= 0.6 on held-out generated images (3 shape classes, random colours); tiny ~0.76.
Run: kb run faster-rcnn
"""

import math  # noqa: E401
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from runnable._boxes import box_iou, decode, encode, mean_average_precision, nms_mask, roi_pool
from runnable._shapes import make_scenes

GATE = ("map50", ">=", 0.6)


@dataclass
class Config:
    backbone: tuple = (
        8,
        "m",
        16,
        "m",
        32,
    )  # 3x3 conv widths, "m" = 2x2 max-pool (ZF / VGG-16 in the paper)
    batch_norm: bool = (
        True  # after each backbone conv, to train from scratch (the paper starts from ImageNet)
    )
    scales: tuple = (8.0, 13.0, 20.0)  # anchor sides in pixels (128, 256, 512 in the paper)
    ratios: tuple = (0.5, 1.0, 2.0)  # height / width
    pool: int = 4  # RoI pooling output H x W (6 for ZF, 7 for VGG)
    fc_width: int = 128  # two FC layers of the detector (4096 in the paper)
    K: int = 3  # object classes (20 for PASCAL VOC)
    rpn_batch: int = 32  # anchors sampled per image for the RPN loss, <= half positive (256)
    roi_batch: int = 16  # RoIs sampled per image for the detector, <= 25 % foreground (128)
    pre_nms: int = 64  # proposals kept by objectness before NMS (12000 / 6000)
    post_nms: int = 16  # proposals kept after NMS at IoU 0.7 (2000 train / 300 test)
    image_size: int = 32
    n_train: int = 800
    n_test: int = 250
    epochs: int = 6
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    # VGG-16 (13 convs, 4 pools, stride 16), 512-d RPN, 7x7 RoI pooling, fc6/fc7 of 4096, PASCAL VOC's 20 classes.
    "paper": Config(
        backbone=(
            64,
            64,
            "m",
            128,
            128,
            "m",
            256,
            256,
            256,
            "m",
            512,
            512,
            512,
            "m",
            512,
            512,
            512,
        ),
        batch_norm=False,
        scales=(128.0, 256.0, 512.0),
        pool=7,
        fc_width=4096,
        K=20,
        rpn_batch=256,
        roi_batch=128,
        pre_nms=6000,
        post_nms=300,
        image_size=600,
        batch_size=1,
        lr=1e-3,
    ),
    "gpu": Config(
        backbone=(32, 32, "m", 64, 64, "m", 128, 128),
        scales=(12.0, 24.0, 40.0),
        fc_width=512,
        pool=7,
        image_size=64,
        pre_nms=256,
        post_nms=32,
        roi_batch=64,
        rpn_batch=128,
        n_train=20000,
        n_test=500,
        epochs=15,
        batch_size=64,
        lr=2e-3,
    ),
}


def make_anchors(cfg: Config) -> torch.Tensor:
    """(H*W*k, 4): k = scales x ratios anchors centred on every feature-map cell (sec. 3.1.1)."""
    stride = 2 ** cfg.backbone.count("m")
    cy, cx = torch.meshgrid(
        *[(torch.arange(cfg.image_size // stride) + 0.5) * stride] * 2, indexing="ij"
    )
    wh = torch.tensor(
        [[s / math.sqrt(r), s * math.sqrt(r)] for s in cfg.scales for r in cfg.ratios]
    )  # area s^2
    ctr = torch.stack([cx, cy], -1)[:, :, None]  # (H, W, 1, 2)
    return torch.cat([ctr - wh / 2, ctr + wh / 2], -1).reshape(-1, 4)


class FasterRCNN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        layers, c = [], 3
        for v in cfg.backbone:  # shared convolutional layers
            layers += (
                [nn.MaxPool2d(2)]
                if v == "m"
                else [
                    nn.Conv2d(c, v, 3, padding=1),
                    nn.BatchNorm2d(v) if cfg.batch_norm else nn.Identity(),
                    nn.ReLU(inplace=True),
                ]
            )
            c = c if v == "m" else v
        self.backbone, self.cfg = nn.Sequential(*layers), cfg
        self.scale, k = 1 / 2 ** cfg.backbone.count("m"), len(cfg.scales) * len(cfg.ratios)
        self.rpn_conv = nn.Conv2d(
            c, c, 3, padding=1
        )  # sec. 3.1: 3x3 window -> 256-d (ZF) / 512-d (VGG)
        self.rpn_cls = nn.Conv2d(c, 2 * k, 1)  # cls layer: 2k scores
        self.rpn_reg = nn.Conv2d(c, 4 * k, 1)  # reg layer: 4k coordinates
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * cfg.pool**2, cfg.fc_width),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.fc_width, cfg.fc_width),
            nn.ReLU(inplace=True),
        )
        self.cls_score = nn.Linear(cfg.fc_width, cfg.K + 1)  # K classes + background
        self.bbox_pred = nn.Linear(cfg.fc_width, 4 * (cfg.K + 1))  # class-specific box regression

    def rpn(self, feats):  # (B, C, H, W) -> (B, H*W*k, 2), (B, H*W*k, 4)
        h = F.relu(self.rpn_conv(feats))
        return [
            conv(h).permute(0, 2, 3, 1).flatten(1).unflatten(1, (-1, d))
            for conv, d in ((self.rpn_cls, 2), (self.rpn_reg, 4))
        ]

    def head(self, feats, rois, keep=None):  # rois (B, N, 4), keep (B, N) bool or None
        b = torch.arange(len(rois))[:, None, None].expand(-1, rois.shape[1], 1).to(rois)
        roi5 = (
            torch.cat([b, rois], -1)[keep]
            if keep is not None
            else torch.cat([b, rois], -1).flatten(0, 1)
        )
        h = self.fc(
            roi_pool(feats, roi5.to(feats.device), self.cfg.pool, self.scale)
        )  # (R, C*pool^2) -> (R, fc)
        return self.cls_score(h), self.bbox_pred(h).unflatten(1, (-1, 4))  # (R, K+1), (R, K+1, 4)


def build_model(cfg: Config) -> nn.Module:
    return FasterRCNN(cfg)


def propose(cls, reg, anchors, cfg: Config):
    """Sec. 3.3: decode every anchor, clip, top pre_nms by objectness, NMS at IoU 0.7 -> (B, post_nms, 4)."""
    score, i = (
        cls.float().softmax(-1)[..., 1].topk(min(cfg.pre_nms, cls.shape[1]), 1)
    )  # (B, pre_nms)
    boxes = (
        decode(reg.float(), anchors)
        .clamp(0, cfg.image_size)
        .gather(1, i[..., None].expand(-1, -1, 4))
    )
    j = torch.where(nms_mask(boxes, score, 0.7), score, -1.0).topk(cfg.post_nms, 1).indices
    return boxes.gather(1, j[..., None].expand(-1, -1, 4))


def sample(labels, n: int, fg_fraction: float):
    """Keep <= n * fg_fraction random positives (label > 0), fill up to n with negatives (label 0)."""
    r = torch.rand(labels.shape)
    pos = (labels > 0) & (
        torch.where(labels > 0, r, 2.0).argsort(1).argsort(1) < int(n * fg_fraction)
    )
    rank_neg = torch.where(labels == 0, r, 2.0).argsort(1).argsort(1)
    return pos | ((labels == 0) & (rank_neg < n - pos.sum(1, keepdim=True)))


def assign(boxes, gt, gt_label, hi: float, lo: float, force_best: bool = False):
    """Label class + 1 where the best IoU >= hi, 0 where < lo, -1 (ignored) between; padded gt have label -1."""
    iou = box_iou(boxes[:, :, None], gt[:, None]).masked_fill(
        (gt_label < 0)[:, None], -1
    )  # (B, N, G)
    best, j = iou.max(2)  # sec. 3.1.2: each gt's best anchor is positive too
    best = (
        torch.where(((iou == iou.amax(1, keepdim=True)) & (iou > 0.1)).any(2), 1.0, best)
        if force_best
        else best
    )
    lab = torch.where(best >= hi, gt_label.gather(1, j) + 1, torch.where(best < lo, 0, -1))
    return lab, gt.gather(1, j[..., None].expand(-1, -1, 4))


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    scenes = [
        make_scenes(n, cfg.image_size, seed, cfg.K, side=(0.25, 0.6))  # 1-3 objects
        for n, seed in ((cfg.n_train, cfg.seed + 1), (cfg.n_test, cfg.seed + 2))
    ]
    (x, (gt, gt_lab)), (xt, (gt_t, gt_lab_t)) = (
        (s.images, s.padded(3)) for s in scenes
    )  # held out
    anchors = make_anchors(cfg)
    rpn_lab, rpn_box = assign(
        anchors.expand(cfg.n_train, -1, -1), gt, gt_lab, 0.7, 0.3, force_best=True
    )
    rpn_lab, rpn_t = rpn_lab.clamp(max=1), encode(rpn_box, anchors)  # object / not; eq. 2 targets
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)  # paper: SGD with momentum 0.9
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.lr, cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size), pct_start=0.15
    )
    amp, start = (
        dict(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")),
        time.perf_counter(),
    )
    for idx in (
        i for _ in range(cfg.epochs) for i in torch.randperm(cfg.n_train).split(cfg.batch_size)
    ):
        use = sample(
            rpn_lab[idx], cfg.rpn_batch, 0.5
        )  # sec. 3.1.3: up to 1:1 positives : negatives
        pos = use & (rpn_lab[idx] > 0)
        with torch.autocast(**amp):
            feats = model.backbone(x[idx].to(device))
            cls, reg = (
                o.float() for o in model.rpn(feats)
            )  # eq. 1; regression sum / N_cls (lambda ~ 1)
            L_rpn = (
                F.cross_entropy(cls[use.to(device)], rpn_lab[idx][use].to(device))
                + F.smooth_l1_loss(reg[pos.to(device)], rpn_t[idx][pos].to(device), reduction="sum")
                / use.sum().item()
            )
            # The detector takes proposals as constants (approximate joint training, sec. 3.2), plus the gt.
            rois = torch.cat(
                [propose(cls.detach().cpu(), reg.detach().cpu(), anchors, cfg), gt[idx]], 1
            )
            lab, box = assign(rois, gt[idx], gt_lab[idx], 0.5, 0.5)
            keep = sample(lab, cfg.roi_batch, 0.25)  # Fast R-CNN: <= 25 % foreground RoIs
            k, fg = lab[keep].to(device), (lab[keep] > 0).to(device)
            score, delta = (o.float() for o in model.head(feats, rois, keep))
            L_det = F.cross_entropy(
                score, k
            ) + F.smooth_l1_loss(  # class-specific box loss on fg RoIs only
                delta[fg, k[fg]], encode(box[keep], rois[keep]).to(device)[fg], reduction="sum"
            ) / len(k)
        loss = L_rpn + L_det
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    model.eval()  # batch norm: running statistics
    with torch.no_grad(), torch.autocast(**amp):  # test: proposals -> RoI head -> box per class
        feats = model.backbone(xt.to(device))
        props = propose(
            *(o.float().cpu() for o in model.rpn(feats)), anchors, cfg
        )  # (n_test, N, 4)
        score, delta = (
            o.float().cpu().unflatten(0, props.shape[:2]) for o in model.head(feats, props)
        )
    p, boxes = (
        score.softmax(-1)[..., 1:],
        decode(delta[:, :, 1:], props[:, :, None]).clamp(0, cfg.image_size),
    )
    keep = nms_mask(
        boxes.transpose(1, 2).flatten(0, 1), p.transpose(1, 2).flatten(0, 1), 0.3
    )  # per image, class
    p = p * keep.unflatten(0, (len(p), -1)).transpose(1, 2)  # (n_test, N, K), 0 if suppressed
    dets = [(b[s > 0.01], s[s > 0.01], (s > 0.01).nonzero()[:, 1]) for b, s in zip(boxes, p)]
    gts = [(g[lab >= 0], lab[lab >= 0]) for g, lab in zip(gt_t, gt_lab_t)]
    value = mean_average_precision(dets, gts, cfg.K)
    recall = (
        (box_iou(props[:, :, None], gt_t[:, None]).amax(1) >= 0.5) & (gt_lab_t >= 0)
    ).sum().item() / (gt_lab_t >= 0).sum().item()
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "rpn_recall": recall,
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
