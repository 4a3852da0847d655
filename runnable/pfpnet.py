"""Parallel Feature Pyramid Network for Object Detection (PFPNet).

Paper: Parallel Feature Pyramid Network for Object Detection (Kim et al., 2018) https://openaccess.thecvf.com/content_ECCV_2018/html/Seung-Wook_Kim_Parallel_Feature_Pyramid_ECCV_2018_paper.html
SSD builds its pyramid by going deeper, so small-object levels are shallow. PFPNet builds it by going
wider: SPP-style pooling of one base feature map gives N scales, each transformed by a parallel branch
of the same depth (similar abstraction at every scale); MSCA modules then resize the pooled features to
each level and concatenate them (multi-scale context aggregation) before SSD-style box/class heads.
Gate: detection mAP@0.5 >= 0.7 on held-out generated shapes of sides 6-30 px (tiny reaches ~0.95).
Run: python -m runnable.pfpnet --preset tiny
"""
import argparse, ast, json, math, time  # noqa: E401
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("map50", ">=", 0.7)


@dataclass
class Config:
    base: tuple = (8, "m", 24, "m", 48)  # base net: 3x3 conv widths, "m" = 2x2 max-pool (VGG-16 in the paper)
    N: int = 3                  # pyramid levels (4 in PFPNet-S320)
    C_H: int = 32               # channels of the high-dimensional pooled features F_H
    C_P: int = 32               # channels of each final pyramid level P_n
    aspect_ratios: tuple = (1.0, 2.0, 0.5)
    anchor_scale: float = 2.0   # anchor side = anchor_scale * stride of the level
    n_classes: int = 3          # object classes; class 0 of the head is background
    image_size: int = 48
    n_train: int = 1200
    n_test: int = 300
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    neg_pos_ratio: int = 3      # SSD hard negative mining
    nms_iou: float = 0.45
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # PFPNet-S320 as far as we read it: VGG-16 to conv4_3, 320 x 320 input, N = 4 levels; widths are our choice.
    "paper": Config(base=(64, 64, "m", 128, 128, "m", 256, 256, 256, "m", 512, 512, 512), N=4, C_H=512, C_P=256,
                    n_classes=20, image_size=320),
    "gpu": Config(base=(32, 32, "m", 64, 64, "m", 128, 128), N=4, C_H=128, C_P=128, image_size=96,
                  n_train=20000, n_test=1000, epochs=30, batch_size=64, amp_bf16=True),
}


class PFPNet(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        conv = lambda c_in, c_out, k=3: nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.ReLU(inplace=True))
        layers, c = [], 3
        for v in cfg.base:                                         # VGG-style base network
            layers += [nn.MaxPool2d(2)] if v == "m" else [*conv(c, v)]
            c = c if v == "m" else v
        self.base, self.N = nn.Sequential(*layers), cfg.N
        C_L = cfg.C_H // (cfg.N - 1)    # sec. 3.2: C_L = C_H / (N - 1); all levels equally deep (widened)
        self.bottleneck = nn.ModuleList(conv(c, cfg.C_H) for _ in range(cfg.N))
        self.reduce = nn.ModuleList(conv(cfg.C_H, C_L, 1) for _ in range(cfg.N))
        self.msca = nn.ModuleList(conv(cfg.C_H + (cfg.N - 1) * C_L, cfg.C_P) for _ in range(cfg.N))
        A, self.K = len(cfg.aspect_ratios), cfg.n_classes + 1     # SSD heads: K scores + 4 offsets per anchor
        self.cls_head = nn.ModuleList(nn.Conv2d(cfg.C_P, A * self.K, 3, padding=1) for _ in range(cfg.N))
        self.box_head = nn.ModuleList(nn.Conv2d(cfg.C_P, A * 4, 3, padding=1) for _ in range(cfg.N))

    def forward(self, x):                                          # (B, 3, H, W)
        f = self.base(x)                                           # (B, D, W0, W0)
        f_P = [F.max_pool2d(f, 2 ** n) if n else f for n in range(self.N)]   # SPP: sizes W0 / 2^n
        F_H = [b(p) for b, p in zip(self.bottleneck, f_P)]         # (B, C_H, W0/2^n, .)
        F_L = [r(h) for r, h in zip(self.reduce, F_H)]             # (B, C_L, W0/2^n, .)
        cls, box = [], []
        for n in range(self.N):
            ctx = [F.interpolate(F_L[m], size=F_H[n].shape[-2:], mode="bilinear") if m > n   # up-sample coarser,
                   else F.adaptive_max_pool2d(F_L[m], F_H[n].shape[-2:]) for m in range(self.N) if m != n]  # pool finer
            P_n = self.msca[n](torch.cat([F_H[n], *ctx], 1))       # MSCA: concat F_H^n with resized F_L^m
            cls.append(self.cls_head[n](P_n).permute(0, 2, 3, 1).flatten(1).unflatten(1, (-1, self.K)))
            box.append(self.box_head[n](P_n).permute(0, 2, 3, 1).flatten(1).unflatten(1, (-1, 4)))
        return torch.cat(cls, 1), torch.cat(box, 1)                # (B, n_anchors, K), (B, n_anchors, 4)


def build_model(cfg: Config) -> nn.Module:
    return PFPNet(cfg)


def make_anchors(cfg: Config) -> torch.Tensor:
    """Anchors (x1, y1, x2, y2) in pixels, ordered as the heads' outputs: level, row, column, aspect."""
    stride0, out = 2 ** cfg.base.count("m"), []
    for n in range(cfg.N):
        s = stride0 * 2 ** n
        side, c = cfg.image_size // s, (torch.arange(cfg.image_size // s) + 0.5) * s
        cy, cx = torch.meshgrid(c, c, indexing="ij")
        wh = torch.tensor([[cfg.anchor_scale * s * math.sqrt(a), cfg.anchor_scale * s / math.sqrt(a)]
                           for a in cfg.aspect_ratios]).expand(side, side, -1, -1)     # (side, side, A, 2)
        ctr = torch.stack([cx, cy], -1)[:, :, None].expand_as(wh)
        out.append(torch.cat([ctr - wh / 2, ctr + wh / 2], -1).reshape(-1, 4))
    return torch.cat(out)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:   # boxes (x1, y1, x2, y2), broadcast
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda z: (z[..., 2] - z[..., 0]).clamp(min=0) * (z[..., 3] - z[..., 1]).clamp(min=0)
    return inter / (area(a) + area(b) - inter + 1e-9)


def encode(boxes, anchors):                                        # SSD box encoding, variances (0.1, 0.2)
    wh_a, c_a = anchors[..., 2:] - anchors[..., :2], (anchors[..., 2:] + anchors[..., :2]) / 2
    wh, c = boxes[..., 2:] - boxes[..., :2], (boxes[..., 2:] + boxes[..., :2]) / 2
    return torch.cat([(c - c_a) / wh_a / 0.1, (wh / wh_a).log() / 0.2], -1)


def decode(t, anchors):
    wh_a, c_a = anchors[..., 2:] - anchors[..., :2], (anchors[..., 2:] + anchors[..., :2]) / 2
    c, wh = c_a + t[..., :2] * 0.1 * wh_a, wh_a * (t[..., 2:] * 0.2).clamp(max=4).exp()
    return torch.cat([c - wh / 2, c + wh / 2], -1)


def match(boxes, labels, anchors, threshold=0.5):
    """Each anchor takes its best ground truth if IoU >= 0.5; each ground truth also takes its best anchor."""
    iou = box_iou(boxes[:, None], anchors[None])                  # (G, n_anchors)
    best, gt = iou.max(0)
    best[iou.argmax(1)] = 1.0
    gt[iou.argmax(1)] = torch.arange(len(boxes))
    return torch.where(best >= threshold, labels[gt] + 1, 0), encode(boxes[gt], anchors)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:   # greedy
    order, keep = scores.argsort(descending=True), []
    while order.numel():
        keep.append(int(order[0]))
        order = order[1:][box_iou(boxes[order[0]], boxes[order[1:]]) <= iou_threshold]
    return torch.tensor(keep, dtype=torch.long)


def mean_average_precision(dets, gts, C: int, iou_threshold: float = 0.5) -> float:
    """PASCAL VOC AP (all-point interpolation) per class, averaged. dets[i] = (boxes, scores, labels)."""
    aps = []
    for c in range(C):
        found = sorted(((float(s), i, b) for i, (bx, sc, lb) in enumerate(dets)
                        for b, s in zip(bx[lb == c], sc[lb == c])), key=lambda t: -t[0])
        gt_c = [g[0][g[1] == c] for g in gts]
        used = [torch.zeros(len(g), dtype=torch.bool) for g in gt_c]
        n_gt, tp = sum(len(g) for g in gt_c), []
        for _, i, b in found:
            ious = box_iou(b, gt_c[i])
            j = int(ious.argmax()) if len(ious) else -1
            hit = j >= 0 and bool(ious[j] >= iou_threshold) and not bool(used[i][j])
            if hit:
                used[i][j] = True
            tp.append(float(hit))
        tp = torch.tensor(tp)
        recall = torch.cat([torch.zeros(1), tp.cumsum(0) / max(n_gt, 1), torch.ones(1)])
        precision = torch.cat([torch.zeros(1), tp.cumsum(0) / torch.arange(1, len(tp) + 1), torch.zeros(1)])
        precision = precision.flip(0).cummax(0).values.flip(0)     # precision envelope
        aps.append(float(((recall[1:] - recall[:-1]) * precision[1:]).sum()))
    return sum(aps) / C


def make_scenes(cfg: Config, n: int, seed: int):
    """Noisy images with 1-3 non-overlapping rectangles / discs / triangles of sides 6-30 px (at 48 px)."""
    g, size = torch.Generator().manual_seed(seed), cfg.image_size
    palette = torch.tensor([[0.9, 0.3, 0.2], [0.2, 0.8, 0.3], [0.3, 0.4, 0.95]])
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    images = 0.45 + 0.1 * torch.rand(n, 3, 1, 1, generator=g) + 0.12 * torch.randn(n, 3, size, size, generator=g)
    boxes, labels = [], []
    for i in range(n):
        bx, lb = [], []
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            w, h = (size * (0.12 + 0.5 * torch.rand(2, generator=g))).tolist()
            x1, y1 = ((size - torch.tensor([w, h])) * torch.rand(2, generator=g)).tolist()
            box = torch.tensor([x1, y1, x1 + w, y1 + h])
            if any(box_iou(box, b) > 0 for b in bx):
                continue                                           # keep objects apart
            c = int(torch.randint(cfg.n_classes, (1,), generator=g))
            u, v = (xx - x1) / w, (yy - y1) / h
            inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1) & (   # rectangle, disc, triangle (apex up)
                [u >= 0, (2 * u - 1) ** 2 + (2 * v - 1) ** 2 <= 1, (2 * u - 1).abs() <= v][c % 3])
            colour = palette[c % 3] + 0.1 * torch.randn(3, generator=g)
            images[i][:, inside] = colour[:, None] + 0.05 * torch.randn(3, int(inside.sum()), generator=g)
            bx.append(box), lb.append(c)
        boxes.append(torch.stack(bx)), labels.append(torch.tensor(lb))
    return images, boxes, labels


def multibox_loss(cls, box, t_cls, t_box, neg_pos_ratio: int):
    """SSD loss: softmax cross-entropy with 3:1 hard negative mining + smooth L1 on positives, / n_pos."""
    pos = t_cls > 0                                                # (B, n_anchors)
    ce = F.cross_entropy(cls.flatten(0, 1), t_cls.flatten(), reduction="none").view_as(t_cls)
    rank = ce.detach().masked_fill(pos, -1).argsort(1, descending=True).argsort(1)
    hard_neg = rank < neg_pos_ratio * pos.sum(1, keepdim=True)
    L_loc = F.smooth_l1_loss(box[pos], t_box[pos], reduction="sum")   # localization loss on positives
    return ((ce * (pos | hard_neg)).sum() + L_loc) / pos.sum().clamp(min=1)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    x, boxes, labels = make_scenes(cfg, cfg.n_train, cfg.seed + 1)
    xt, boxes_t, labels_t = make_scenes(cfg, cfg.n_test, cfg.seed + 2)   # held-out split
    anchors = make_anchors(cfg)
    t_cls, t_box = map(torch.stack, zip(*(match(b, l, anchors) for b, l in zip(boxes, labels))))
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # NHWC: CPU conv + pool ~1.5x faster
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda"))
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(cfg.n_train).split(cfg.batch_size):
            with torch.autocast(**amp):
                cls, box = model(x[idx].to(device, memory_format=torch.channels_last))
            loss = multibox_loss(cls.float(), box.float(), t_cls[idx].to(device), t_box[idx].to(device),
                                 cfg.neg_pos_ratio)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    dets = []
    with torch.no_grad(), torch.autocast(**amp):
        for i in torch.arange(cfg.n_test).split(256):
            cls, box = (o.float().cpu() for o in model(xt[i].to(device)))
            for p, t in zip(cls.softmax(-1), box):
                bx, sc, lb = [], [], []
                for c in range(cfg.n_classes):                     # top 50 per class, then NMS
                    score, m = p[:, c + 1].topk(min(50, len(p)))
                    score, b = score[score > 0.01], decode(t[m], anchors[m])[score > 0.01]
                    keep = nms(b, score, cfg.nms_iou)
                    bx.append(b[keep]), sc.append(score[keep]), lb.append(torch.full((len(keep),), c))
                dets.append((torch.cat(bx), torch.cat(sc), torch.cat(lb)))
    value = mean_average_precision(dets, list(zip(boxes_t, labels_t)), cfg.n_classes)
    return {"metric": GATE[0], "value": value, "passed": value >= GATE[2], "final_loss": loss.item(),
            "params": sum(p.numel() for p in model.parameters()), "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=PRESETS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args, rest = ap.parse_known_args(argv)
    cfg = PRESETS[args.preset]
    for item in rest:  # --field=value overrides; tuples and booleans as Python literals
        key, _, value = item.removeprefix("--").partition("=")
        old = getattr(cfg, key) if key in {f.name for f in fields(Config)} else ap.error(f"unknown option {item}")
        cfg = replace(cfg, **{key: ast.literal_eval(value) if isinstance(old, (tuple, bool)) else type(old)(value)})
    result = train(cfg, args.device)
    print(json.dumps(result) if args.json else f"{GATE[0]} = {result['value']:.4f} "
          f"({'passed' if result['passed'] else 'FAILED'} the gate {GATE[1]} {GATE[2]})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
