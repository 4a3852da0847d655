"""Mask R-CNN (a tiny two-stage detector with RoIAlign and a per-class mask head).

Paper: Mask R-CNN (He et al., 2017) https://arxiv.org/abs/1703.06870
Faster R-CNN plus a third branch: for each RoI a small FCN predicts K binary m x m masks, trained
with a per-pixel sigmoid BCE on the mask of the RoI's ground-truth class only (decoupled from
classification). RoIAlign (sec. 3) replaces RoIPool's coordinate quantization by bilinear sampling
at regularly spaced points in each bin, keeping the pixel-to-pixel alignment that masks need.
Proposals here are a fixed grid of anchor boxes (what an RPN starts from), never the ground truth;
masks are predicted in the regressed boxes. Contrast: the same net with Fast R-CNN's RoIPool.
Run: python -m runnable.mask-rcnn --preset tiny
"""

import math  # noqa: E401
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from runnable._boxes import box_iou, decode, encode, flat_rois, mask_iou, paste_masks, roi_pool
from runnable._shapes import make_scenes

GATE = ("mask-iou", ">=", 0.7)
HEAD_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # the box head's target weights (as in Faster R-CNN code)
ACCURACY_MIN = 0.9  # box classification accuracy the tiny preset must also reach


@dataclass
class Config:
    backbone: tuple = (16, "m", 32, "m", 48, "m", 64)  # 3x3 conv widths, "m" = 2x2 max-pool
    batch_norm: bool = True  # after each backbone conv (the paper's ResNet has it, frozen)
    pool: str = "align"  # "align": RoIAlign; "max": RoIPool, the ablation
    box_pool: int = 7  # RoI features for the box head (7 x 7 in the paper)
    mask_pool: int = 7  # for the mask head (14 x 14 -> 28 x 28 masks in the paper)
    fc_width: int = 128  # box head 2 x FC (1024 in the paper)
    mask_convs: int = 2  # mask head 3x3 convs (4 in the paper's FPN head)
    mask_width: int = 32  # (256)
    K: int = 3  # object classes (80 for COCO); box head outputs K + 1
    sampling_ratio: int = 2  # bilinear samples per bin side in RoIAlign
    image_size: int = 48
    side: tuple = (0.3, 0.65)  # object sides, fractions of the image
    anchors: tuple = (15.0, 22.0, 32.0)  # proposal sides in pixels, 3 aspect ratios each
    rois_per_image: int = 8  # up to half of them foreground (Fast R-CNN samples 25 %)
    n_train: int = 1200
    n_test: int = 300
    epochs: int = 4
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # Heads of the paper's FPN variant (Fig. 4 right) on a plain stand-in backbone of 256
    # channels at stride 16.
    "paper": Config(
        backbone=(64, "m", 128, "m", 256, "m", 256, "m", 256),
        batch_norm=False,
        fc_width=1024,
        mask_convs=4,
        mask_pool=14,
        mask_width=256,
        K=80,
        image_size=800,
        epochs=5,
    ),
    "gpu": Config(
        backbone=(32, 32, "m", 64, 64, "m", 64),
        fc_width=512,
        mask_convs=4,
        mask_pool=14,
        mask_width=128,
        image_size=96,
        anchors=(24.0, 36.0, 54.0),
        n_train=20000,
        n_test=1000,
        epochs=20,
        batch_size=64,
        amp_bf16=True,
    ),
}


def roi_align(features, rois, output_size: int, spatial_scale: float, sampling_ratio: int = 2):
    """Sec. 3 RoIAlign: (B, C, H, W), rois (R, 5) = (batch index, x1, y1, x2, y2) in pixels ->
    (R, C, P, P). No rounding: each bin averages sampling_ratio^2 bilinearly interpolated points
    (pixel centres at i + 0.5)."""
    H, W = features.shape[-2:]
    P, s = output_size, sampling_ratio
    b, x1, y1, x2, y2 = rois.unbind(1)
    t = (torch.arange(P * s, device=rois.device, dtype=rois.dtype) + 0.5) / (P * s)  # (P*s,)
    xs = (x1[:, None] + t * (x2 - x1)[:, None]) * spatial_scale  # (R, P*s)
    ys = (y1[:, None] + t * (y2 - y1)[:, None]) * spatial_scale
    grid = torch.stack(
        [xs[:, None, :].expand(-1, P * s, -1), ys[:, :, None].expand(-1, -1, P * s)], -1
    )
    grid = grid / torch.tensor([W, H], device=rois.device, dtype=rois.dtype) * 2 - 1  # [-1, 1]
    if features.is_meta:  # shapes
        return features.new_empty(len(rois), features.shape[1], P, P)
    samples = features.new_zeros(len(rois), features.shape[1], P * s, P * s)
    for i in b.long().unique().tolist():  # one grid_sample per image
        sel = b.long() == i
        g_i = grid[sel].to(features.dtype).flatten(0, 1)[None]  # (1, n_i*P*s, P*s, 2)
        samples[sel] = (
            F.grid_sample(
                features[i : i + 1],
                g_i,
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )[0]
            .unflatten(1, (-1, P * s))
            .transpose(0, 1)
        )
    return F.avg_pool2d(samples, s)  # (R, C, P, P)


class MaskRCNN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        layers, c = [], 3
        for v in cfg.backbone:
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
        self.spatial_scale = 1 / 2 ** cfg.backbone.count("m")
        self.box_head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * cfg.box_pool**2, cfg.fc_width),
            nn.ReLU(True),
            nn.Linear(cfg.fc_width, cfg.fc_width),
            nn.ReLU(inplace=True),
        )
        self.cls_score = nn.Linear(cfg.fc_width, cfg.K + 1)
        self.bbox_pred = nn.Linear(cfg.fc_width, 4 * (cfg.K + 1))  # class-specific box regression
        convs, w = [], cfg.mask_width
        for i in range(cfg.mask_convs):
            convs += [nn.Conv2d(c if i == 0 else w, w, 3, padding=1), nn.ReLU(inplace=True)]
        self.mask_head = nn.Sequential(
            *convs,
            nn.ConvTranspose2d(w, w, 2, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, cfg.K, 1),
        )  # K masks

    def pool(self, feats, rois, P):  # RoIAlign, or RoIPool (ablation)
        if self.cfg.pool == "max":
            return roi_pool(feats, rois, P, self.spatial_scale)
        return roi_align(feats, rois, P, self.spatial_scale, self.cfg.sampling_ratio)

    def heads(self, feats, rois):
        h = self.box_head(self.pool(feats, rois, self.cfg.box_pool))
        return self.cls_score(h), self.bbox_pred(h).unflatten(1, (-1, 4))  # (R, K+1), (R, K+1, 4)

    def masks(self, feats, rois):
        return self.mask_head(self.pool(feats, rois, self.cfg.mask_pool))

    def forward(self, images, rois):  # (B, 3, H, W), (R, 5)
        feats = self.backbone(images)  # (B, C, H/2^k, W/2^k)
        return (*self.heads(feats, rois), self.masks(feats, rois))  # ..., (R, K, 2P, 2P)


def build_model(cfg: Config) -> nn.Module:
    return MaskRCNN(cfg)


def make_data(cfg: Config, n: int, seed: int, n_rois: int):
    """Scenes and per image n_rois proposals from a fixed grid of anchor boxes (stride 4, three
    sides, three aspect ratios), independent of the image: up to half of them overlap an object by
    IoU >= 0.5 and take its class, the rest are background (0)."""
    scenes, g, S = (
        make_scenes(n, cfg.image_size, seed, cfg.K, cfg.side),
        torch.Generator().manual_seed(seed + 1000),
        cfg.image_size,
    )
    c = torch.arange(2, S, 4.0)
    cy, cx = torch.meshgrid(c, c, indexing="ij")
    wh = torch.tensor([[s * r**0.5, s / r**0.5] for s in cfg.anchors for r in (0.5, 1, 2)])
    ctr = torch.stack([cx, cy], -1).reshape(-1, 1, 2)
    grid = torch.cat([ctr - wh / 2, ctr + wh / 2], -1).reshape(-1, 4).clamp(0, S)
    rois, labels = torch.zeros(n, n_rois, 4), torch.zeros(n, n_rois, dtype=torch.long)
    gt_boxes, gt_masks = torch.zeros(n, n_rois, 4), torch.zeros(n, n_rois, S, S, dtype=torch.bool)
    for i, (bx, lb, mk) in enumerate(zip(scenes.boxes, scenes.labels, scenes.masks)):
        iou, j = box_iou(grid[:, None], bx[None]).max(1)  # (n_anchors,)
        fg, bg = (iou >= 0.5).nonzero()[:, 0], (iou < 0.5).nonzero()[:, 0]
        fg = fg[torch.randperm(len(fg), generator=g)[: n_rois // 2]]
        pick = torch.cat([fg, bg[torch.randperm(len(bg), generator=g)[: n_rois - len(fg)]]])
        rois[i], labels[i, : len(fg)] = grid[pick], lb[j[fg]] + 1
        gt_boxes[i], gt_masks[i, : len(fg)] = bx[j[pick]], mk[j[fg]]
    return scenes.images, rois, labels, gt_boxes, gt_masks


def evaluate(model, test, cfg: Config, device: str, amp: dict):
    """Box accuracy over all test RoIs; for the foreground RoIs, the IoU with the object's mask of
    the predicted mask, of the filled box it was pasted into, and of the filled object's box."""
    xt, rois_t, labels_t, gt_boxes_t, gt_masks_t = test
    model.eval()
    pred_k, ious, fills, gt_fills = [], [], [], []
    with torch.no_grad(), torch.autocast(**amp):
        for i in torch.arange(len(xt)).split(128):
            feats, roi5 = model.backbone(xt[i].to(device)), flat_rois(rois_t[i]).to(device)
            cls, box = (o.float().cpu() for o in model.heads(feats, roi5))
            k = cls.argmax(1)
            k_fg = torch.where(k > 0, k, cls[:, 1:].argmax(1) + 1)  # mask of the predicted class
            refined = decode(box[torch.arange(len(k)), k_fg], roi5[:, 1:].cpu(), HEAD_WEIGHTS)
            refined = refined.clamp(0, cfg.image_size)
            refined[:, 2:] = torch.maximum(refined[:, 2:], refined[:, :2] + 1)
            m = model.masks(feats, torch.cat([roi5[:, :1].cpu(), refined], 1).to(device))
            probs = m.float().cpu()[torch.arange(len(k)), k_fg - 1].sigmoid()
            pasted = paste_masks(probs, refined, cfg.image_size) >= 0.5
            gt, pos = gt_masks_t[i].flatten(0, 1), labels_t[i].flatten() > 0
            pred_k.append(k), ious.append(mask_iou(pasted, gt)[pos])
            for out, b in ((fills, refined), (gt_fills, gt_boxes_t[i].flatten(0, 1))):
                out.append(
                    mask_iou(paste_masks(torch.ones_like(probs), b, cfg.image_size) >= 0.5, gt)[pos]
                )
    model.train()
    box_accuracy = (torch.cat(pred_k) == labels_t.flatten()).float().mean().item()
    return (
        torch.cat(ious).mean().item(),
        box_accuracy,
        torch.cat(fills).mean().item(),
        torch.cat(gt_fills).mean().item(),
    )


def fit(cfg: Config, train_data, test, device: str):
    """Train one Mask R-CNN; (mask IoU, box accuracy, box-fill IoU) on held-out data per epoch."""
    torch.manual_seed(cfg.seed)
    x, rois, labels, gt_boxes, gt_masks = train_data
    M = 2 * cfg.mask_pool
    # Sec. 3: the mask target is the RoI's crop of its ground-truth mask, resampled to m x m.
    own = torch.cat([torch.arange(labels.numel()).float()[:, None], rois.flatten(0, 1)], 1)
    t_mask = roi_align(gt_masks.flatten(0, 1)[:, None].float(), own, M, 1.0)[:, 0] >= 0.5
    t_mask, t_box = t_mask.view(*labels.shape, M, M).float(), encode(gt_boxes, rois, HEAD_WEIGHTS)
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # NHWC: faster on CPU
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    history = []
    for _ in range(cfg.epochs):
        for idx in torch.randperm(cfg.n_train).split(cfg.batch_size):
            k = labels[idx].flatten().to(device)
            pos, roi5 = k > 0, flat_rois(rois[idx]).to(device)
            with torch.autocast(**amp):
                feats = model.backbone(x[idx].to(device, memory_format=torch.channels_last))
                cls, box = model.heads(feats, roi5)
                mask = model.masks(feats, roi5[pos])  # mask loss: positive RoIs only
            r = torch.arange(int(pos.sum()), device=device)
            L_cls = F.cross_entropy(cls.float(), k)  # sec. 3: L_cls + L_box + L_mask
            L_box = F.smooth_l1_loss(
                box.float()[pos][r, k[pos]], t_box[idx].flatten(0, 1).to(device)[pos]
            )
            L_mask = F.binary_cross_entropy_with_logits(  # sigmoid BCE, true class's mask
                mask.float()[r, k[pos] - 1], t_mask[idx].flatten(0, 1).to(device)[pos]
            )
            loss = L_cls + L_box + L_mask
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        history.append(evaluate(model, test, cfg, device, amp))
    return model, history


def train(cfg: Config, device: str = "cpu") -> dict:
    start = time.perf_counter()
    train_data = make_data(cfg, cfg.n_train, cfg.seed + 1, cfg.rois_per_image)
    test = make_data(cfg, cfg.n_test, cfg.seed + 2, 4)  # held out
    model, history = fit(replace(cfg, pool="align"), train_data, test, device)
    _, history_pool = fit(replace(cfg, pool="max"), train_data, test, device)  # RoIPool
    (value, box_accuracy, box_fill, box_fill_gt), ablation = history[-1], history_pool[-1][0]
    conditions = {
        "box_accuracy": box_accuracy >= ACCURACY_MIN,  # filled predicted boxes
        "beats_box_fill": value > max(box_fill, box_fill_gt),
    }  # and filled object boxes
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2] and not ablation >= GATE[2] and all(conditions.values()),
        "ablation": {"name": "RoIPool (quantized)", "value": ablation},
        "conditions": conditions,
        "history": {
            "x": "epoch",
            "idea": [h[0] for h in history],
            "ablation": [h[0] for h in history_pool],
        },
        "box_accuracy": box_accuracy,
        "box_fill": box_fill,
        "box_fill_gt": box_fill_gt,
        "seed": cfg.seed,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": time.perf_counter() - start,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
