"""Faster R-CNN: a region proposal network and a RoI-pooling detector sharing one conv backbone.

Paper: Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks (Ren et al., 2015) https://arxiv.org/abs/1506.01497
A small net slides a 3x3 window over the shared conv features, scoring k = 9 anchors (3 scales x 3 ratios)
per position as object / not object and regressing each to a box (sec. 3.1, eq. 1-2). The top proposals after
NMS are RoI-max-pooled from the same features and classified into K classes + background, boxes refined per class.
Gate: detection mAP@0.5 >= 0.6 on held-out generated images (3 shape classes); tiny reaches ~0.82.
Run: kb run faster-rcnn
"""
import argparse, ast, json, math, time  # noqa: E401
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("map50", ">=", 0.6)


@dataclass
class Config:
    backbone: tuple = (8, "m", 16, "m", 32)  # 3x3 conv widths, "m" = 2x2 max-pool (ZF / VGG-16 in the paper)
    scales: tuple = (8.0, 13.0, 20.0)   # anchor sides in pixels (128, 256, 512 in the paper)
    ratios: tuple = (0.5, 1.0, 2.0)     # height / width
    pool: int = 4               # RoI pooling output H x W (6 for ZF, 7 for VGG)
    fc_width: int = 128         # two FC layers of the detector (4096 in the paper)
    K: int = 3                  # object classes (20 for PASCAL VOC)
    rpn_batch: int = 32         # anchors sampled per image for the RPN loss, <= half positive (256)
    roi_batch: int = 16         # RoIs sampled per image for the detector, <= 25 % foreground (128)
    pre_nms: int = 64           # proposals kept by objectness before NMS (12000 / 6000)
    post_nms: int = 16          # proposals kept after NMS at IoU 0.7 (2000 train / 300 test)
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
    "paper": Config(backbone=(64, 64, "m", 128, 128, "m", 256, 256, 256, "m", 512, 512, 512, "m", 512, 512, 512),
                    scales=(128.0, 256.0, 512.0), pool=7, fc_width=4096, K=20, rpn_batch=256,
                    roi_batch=128, pre_nms=6000, post_nms=300, image_size=600, batch_size=1, lr=1e-3),
    "gpu": Config(backbone=(32, 32, "m", 64, 64, "m", 128, 128), scales=(12.0, 24.0, 40.0), fc_width=512, pool=7, image_size=64,
                  pre_nms=256, post_nms=32, roi_batch=64, rpn_batch=128, n_train=20000, n_test=500, epochs=15, batch_size=64, lr=2e-3),
}

def box_iou(a, b):                                                 # (..., 4) x1 y1 x2 y2, broadcast
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda z: (z[..., 2:] - z[..., :2]).clamp(min=0).prod(-1)
    return inter / (area(a) + area(b) - inter + 1e-9)

def encode(boxes, anchors):
    """Eq. 2: t_x = (x - x_a) / w_a, t_y = (y - y_a) / h_a, t_w = log(w / w_a), t_h = log(h / h_a)."""
    (c_a, wh_a), (c, wh) = [((b[..., 2:] + b[..., :2]) / 2, b[..., 2:] - b[..., :2]) for b in (anchors, boxes)]
    return torch.cat([(c - c_a) / wh_a, (wh / wh_a).log()], -1)

def decode(t, anchors):                                            # inverse of eq. 2
    c_a, wh_a = (anchors[..., 2:] + anchors[..., :2]) / 2, anchors[..., 2:] - anchors[..., :2]
    c, wh = c_a + t[..., :2] * wh_a, wh_a * t[..., 2:].clamp(max=4).exp()
    return torch.cat([c - wh / 2, c + wh / 2], -1)

def make_anchors(cfg: Config) -> torch.Tensor:
    """(H*W*k, 4): k = scales x ratios anchors centred on every feature-map cell (sec. 3.1.1)."""
    stride = 2 ** cfg.backbone.count("m")
    cy, cx = torch.meshgrid(*[(torch.arange(cfg.image_size // stride) + 0.5) * stride] * 2, indexing="ij")
    wh = torch.tensor([[s / math.sqrt(r), s * math.sqrt(r)] for s in cfg.scales for r in cfg.ratios])  # area s^2
    ctr = torch.stack([cx, cy], -1)[:, :, None]                    # (H, W, 1, 2)
    return torch.cat([ctr - wh / 2, ctr + wh / 2], -1).reshape(-1, 4)

def roi_pool(features, rois, P: int, scale: float):
    """Fast R-CNN RoI max pooling: (B, C, H, W), rois (R, 5) = (b, x1, y1, x2, y2) in pixels -> (R, C, P, P).
    The RoI is rounded to feature cells and cut into P x P bins with floor / ceil edges (as adaptive_max_pool2d)."""
    (B, C, H, W), S = features.shape, -(-max(features.shape[-2:]) // P) + 1   # S: the widest bin, in cells
    xy = (rois[:, 1:] * scale).round().long()
    def cells(lo, hi, L):                                          # (R, P*S) cell index per bin and slot
        lo, hi, i = lo.clamp(0, L - 1)[:, None, None], hi.clamp(0, L - 1)[:, None, None], torch.arange(P)[:, None]
        n, i, s = (hi - lo).clamp(min=0) + 1, i.to(lo.device), torch.arange(S, device=lo.device)
        return torch.minimum(lo + (i * n) // P + s, lo - ((-(i + 1) * n) // P) - 1).flatten(1)   # repeat last cell
    ix, iy = cells(xy[:, 0], xy[:, 2], W), cells(xy[:, 1], xy[:, 3], H)
    index = (rois[:, 0].long()[:, None, None] * H + iy[:, :, None]) * W + ix[:, None, :]   # (R, P*S, P*S)
    f = features.permute(0, 2, 3, 1).reshape(B * H * W, C)[index]  # (R, P*S, P*S, C)
    return F.max_pool2d(f.permute(0, 3, 1, 2), S)                  # (R, C, P, P): max over each bin's S x S


class FasterRCNN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        layers, c = [], 3
        for v in cfg.backbone:                                     # shared convolutional layers
            layers += [nn.MaxPool2d(2)] if v == "m" else [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = c if v == "m" else v
        self.backbone, self.cfg = nn.Sequential(*layers), cfg
        self.scale, k = 1 / 2 ** cfg.backbone.count("m"), len(cfg.scales) * len(cfg.ratios)
        self.rpn_conv = nn.Conv2d(c, c, 3, padding=1)              # sec. 3.1: 3x3 window -> 256-d (ZF) / 512-d (VGG)
        self.rpn_cls = nn.Conv2d(c, 2 * k, 1)                      # cls layer: 2k scores
        self.rpn_reg = nn.Conv2d(c, 4 * k, 1)                      # reg layer: 4k coordinates
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c * cfg.pool ** 2, cfg.fc_width), nn.ReLU(inplace=True),
                                nn.Linear(cfg.fc_width, cfg.fc_width), nn.ReLU(inplace=True))
        self.cls_score = nn.Linear(cfg.fc_width, cfg.K + 1)        # K classes + background
        self.bbox_pred = nn.Linear(cfg.fc_width, 4 * (cfg.K + 1))  # class-specific box regression

    def rpn(self, feats):                                          # (B, C, H, W) -> (B, H*W*k, 2), (B, H*W*k, 4)
        h = F.relu(self.rpn_conv(feats))
        return [conv(h).permute(0, 2, 3, 1).flatten(1).unflatten(1, (-1, d)) for conv, d in ((self.rpn_cls, 2), (self.rpn_reg, 4))]

    def head(self, feats, rois, keep=None):                        # rois (B, N, 4), keep (B, N) bool or None
        b = torch.arange(len(rois))[:, None, None].expand(-1, rois.shape[1], 1).to(rois)
        roi5 = torch.cat([b, rois], -1)[keep] if keep is not None else torch.cat([b, rois], -1).flatten(0, 1)
        h = self.fc(roi_pool(feats, roi5.to(feats.device), self.cfg.pool, self.scale))   # (R, C*pool^2) -> (R, fc)
        return self.cls_score(h), self.bbox_pred(h).unflatten(1, (-1, 4))    # (R, K+1), (R, K+1, 4)


def build_model(cfg: Config) -> nn.Module:
    return FasterRCNN(cfg)

def nms_mask(boxes, scores, thr: float):
    """Greedy NMS, batched: boxes (B, N, 4), scores (B, N) -> keep (B, N) bool."""
    order = scores.argsort(1, descending=True)                     # (B, N), then boxes sorted by score
    boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4))
    iou, keep = box_iou(boxes[:, :, None], boxes[:, None]), torch.ones(scores.shape, dtype=torch.bool)   # (B, N, N)
    for i in range(scores.shape[1]):                               # box i survives unless a kept box before it overlaps
        keep[:, i + 1:] &= ~(keep[:, i:i + 1] & (iou[:, i, i + 1:] > thr))
    return torch.zeros_like(keep).scatter(1, order, keep)

def propose(cls, reg, anchors, cfg: Config):
    """Sec. 3.3: decode every anchor, clip, top pre_nms by objectness, NMS at IoU 0.7 -> (B, post_nms, 4)."""
    score, i = cls.float().softmax(-1)[..., 1].topk(min(cfg.pre_nms, cls.shape[1]), 1)    # (B, pre_nms)
    boxes = decode(reg.float(), anchors).clamp(0, cfg.image_size).gather(1, i[..., None].expand(-1, -1, 4))
    j = torch.where(nms_mask(boxes, score, 0.7), score, -1.0).topk(cfg.post_nms, 1).indices
    return boxes.gather(1, j[..., None].expand(-1, -1, 4))

def sample(labels, n: int, fg_fraction: float):
    """Keep <= n * fg_fraction random positives (label > 0), fill up to n with negatives (label 0)."""
    r = torch.rand(labels.shape)
    pos = (labels > 0) & (torch.where(labels > 0, r, 2.0).argsort(1).argsort(1) < int(n * fg_fraction))
    rank_neg = torch.where(labels == 0, r, 2.0).argsort(1).argsort(1)
    return pos | ((labels == 0) & (rank_neg < n - pos.sum(1, keepdim=True)))

def assign(boxes, gt, gt_label, hi: float, lo: float, force_best: bool = False):
    """Label class + 1 where the best IoU >= hi, 0 where < lo, -1 (ignored) between; padded gt have label -1."""
    iou = box_iou(boxes[:, :, None], gt[:, None]).masked_fill((gt_label < 0)[:, None], -1)   # (B, N, G)
    best, j = iou.max(2)                                           # sec. 3.1.2: each gt's best anchor is positive too
    best = torch.where(((iou == iou.amax(1, keepdim=True)) & (iou > 0.1)).any(2), 1.0, best) if force_best else best
    lab = torch.where(best >= hi, gt_label.gather(1, j) + 1, torch.where(best < lo, 0, -1))
    return lab, gt.gather(1, j[..., None].expand(-1, -1, 4))

def make_scenes(cfg: Config, n: int, seed: int):
    """1-3 apart rectangles / discs / triangles of sides 25-60 % of the image; boxes (n, 3, 4), labels -1 = pad."""
    g, size = torch.Generator().manual_seed(seed), cfg.image_size
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    images = 0.45 + 0.1 * torch.rand(n, 3, 1, 1, generator=g) + 0.12 * torch.randn(n, 3, size, size, generator=g)
    boxes, labels = torch.zeros(n, 3, 4), torch.full((n, 3), -1)
    for i in range(n):
        for s in range(int(torch.randint(1, 4, (1,), generator=g))):
            w, h = (size * (0.25 + 0.35 * torch.rand(2, generator=g))).tolist()
            x1, y1 = ((size - torch.tensor([w, h])) * torch.rand(2, generator=g)).tolist()
            box, c = torch.tensor([x1, y1, x1 + w, y1 + h]), int(torch.randint(cfg.K, (1,), generator=g))
            if (box_iou(box, boxes[i, :s]) > 0).any():
                continue                                           # keep objects apart
            u, v = (xx - x1) / w * 2 - 1, (yy - y1) / h            # u in [-1, 1], v in [0, 1] inside the box
            inside = (u.abs() <= 1) & (v >= 0) & (v <= 1) & [u >= -1, u ** 2 + (2 * v - 1) ** 2 <= 1, u.abs() <= v][c % 3]
            colour = torch.tensor([[0.9, 0.3, 0.2], [0.2, 0.8, 0.3], [0.3, 0.4, 0.95]])[c % 3] + 0.1 * torch.randn(3, generator=g)
            images[i][:, inside] = colour[:, None] + 0.05 * torch.randn(3, int(inside.sum()), generator=g)
            boxes[i, s], labels[i, s] = box, c
    return images, boxes, labels

def average_precision(boxes, scores, gt_boxes, gt_labels, thr: float = 0.5) -> float:
    """PASCAL VOC AP (all-point interpolation) per class, averaged. boxes (n, N, K, 4), scores (n, N, K)."""
    aps = []
    for c in range(scores.shape[-1]):
        i, j = (scores[..., c] > 0.01).nonzero(as_tuple=True)      # detections of class c (image i, slot j)
        order = scores[i, j, c].argsort(descending=True)
        i, j = i[order], j[order]
        iou = box_iou(boxes[i, j, c][:, None], gt_boxes[i]).masked_fill(gt_labels[i] != c, 0)   # (D, G)
        used, tp = torch.zeros(gt_labels.shape, dtype=torch.bool), torch.zeros(len(i))
        for d, g in enumerate(iou.argmax(1).tolist()):             # highest score first; each gt counts once
            if iou[d, g] >= thr and not used[i[d], g]:
                used[i[d], g], tp[d] = True, 1.0
        precision = (tp.cumsum(0) / torch.arange(1, len(tp) + 1)).flip(0).cummax(0).values.flip(0)   # envelope
        aps.append(float((precision * tp).sum()) / max(int((gt_labels == c).sum()), 1))   # area under P(R)
    return sum(aps) / len(aps)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    x, gt, gt_lab = make_scenes(cfg, cfg.n_train, cfg.seed + 1)
    xt, gt_t, gt_lab_t = make_scenes(cfg, cfg.n_test, cfg.seed + 2)           # held-out images
    anchors = make_anchors(cfg)
    rpn_lab, rpn_box = assign(anchors.expand(cfg.n_train, -1, -1), gt, gt_lab, 0.7, 0.3, force_best=True)
    rpn_lab, rpn_t = rpn_lab.clamp(max=1), encode(rpn_box, anchors)           # object / not; eq. 2 targets
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)                     # paper: SGD with momentum 0.9
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size), pct_start=0.15)
    amp, start = dict(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")), time.perf_counter()
    for idx in (i for _ in range(cfg.epochs) for i in torch.randperm(cfg.n_train).split(cfg.batch_size)):
        use = sample(rpn_lab[idx], cfg.rpn_batch, 0.5)           # sec. 3.1.3: up to 1:1 positives : negatives
        pos = use & (rpn_lab[idx] > 0)
        with torch.autocast(**amp):
            feats = model.backbone(x[idx].to(device))
            cls, reg = (o.float() for o in model.rpn(feats))       # eq. 1; regression sum / N_cls (lambda ~ 1)
            L_rpn = F.cross_entropy(cls[use.to(device)], rpn_lab[idx][use].to(device)) + F.smooth_l1_loss(
                reg[pos.to(device)], rpn_t[idx][pos].to(device), reduction="sum") / use.sum().item()
            # The detector takes proposals as constants (approximate joint training, sec. 3.2), plus the gt.
            rois = torch.cat([propose(cls.detach().cpu(), reg.detach().cpu(), anchors, cfg), gt[idx]], 1)
            lab, box = assign(rois, gt[idx], gt_lab[idx], 0.5, 0.5)
            keep = sample(lab, cfg.roi_batch, 0.25)               # Fast R-CNN: <= 25 % foreground RoIs
            k, fg = lab[keep].to(device), (lab[keep] > 0).to(device)
            score, delta = (o.float() for o in model.head(feats, rois, keep))
            L_det = F.cross_entropy(score, k) + F.smooth_l1_loss(   # class-specific box loss on fg RoIs only
                delta[fg, k[fg]], encode(box[keep], rois[keep]).to(device)[fg], reduction="sum") / len(k)
        loss = L_rpn + L_det
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start                        # (no dropout / batchnorm: no eval mode needed)
    with torch.no_grad(), torch.autocast(**amp):                  # test: proposals -> RoI head -> box per class
        feats = model.backbone(xt.to(device))
        props = propose(*(o.float().cpu() for o in model.rpn(feats)), anchors, cfg)         # (n_test, N, 4)
        score, delta = (o.float().cpu().unflatten(0, props.shape[:2]) for o in model.head(feats, props))
    p, boxes = score.softmax(-1)[..., 1:], decode(delta[:, :, 1:], props[:, :, None]).clamp(0, cfg.image_size)
    keep = nms_mask(boxes.transpose(1, 2).flatten(0, 1), p.transpose(1, 2).flatten(0, 1), 0.3)  # per image, class
    value = average_precision(boxes, p * keep.unflatten(0, (len(p), -1)).transpose(1, 2), gt_t, gt_lab_t)
    recall = ((box_iou(props[:, :, None], gt_t[:, None]).amax(1) >= 0.5) & (gt_lab_t >= 0)).sum().item() / (gt_lab_t >= 0).sum().item()
    return {"metric": GATE[0], "value": value, "passed": value >= GATE[2], "rpn_recall": recall, "final_loss": loss.item(),
            "params": sum(p.numel() for p in model.parameters()), "seconds": seconds, "images_per_s": cfg.epochs * cfg.n_train / seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=PRESETS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args, rest = ap.parse_known_args(argv)
    cfg = PRESETS[args.preset]
    for key, _, value in (item.removeprefix("--").partition("=") for item in rest):   # --field=value overrides
        old = getattr(cfg, key) if key in {f.name for f in fields(Config)} else ap.error(f"unknown option {key}")
        cfg = replace(cfg, **{key: ast.literal_eval(value) if isinstance(old, (tuple, bool)) else type(old)(value)})
    result = train(cfg, args.device)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
