"""You Only Look Once: Unified, Real-Time Object Detection (YOLO v1).

Paper: You Only Look Once: Unified, Real-Time Object Detection (Redmon et al., 2016) https://arxiv.org/abs/1506.02640
Detection as one regression: the image is divided into an S x S grid; each cell predicts B boxes
(x, y, w, h, confidence) and C conditional class probabilities, so the net outputs S x S x (B*5 + C).
Training is the sum-squared loss of eq. 3 (lambda_coord = 5, lambda_noobj = 0.5, square roots of w, h);
test scores are Pr(class|object) * confidence, followed by per-class non-maximum suppression.
Gate: mAP@0.5 >= 0.6 on held-out generated shapes (tiny reaches 0.85-0.91).
Run: python -m runnable.yolo --preset tiny
"""
import argparse, ast, json, math, time  # noqa: E401
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("map50", ">=", 0.6)

# Fig. 3: "c{k}-{filters}[-s{stride}]" is a k x k convolution, "m" a 2 x 2 max-pool with stride 2.
PAPER_LAYERS = ("c7-64-s2", "m", "c3-192", "m", "c1-128", "c3-256", "c1-256", "c3-512", "m",
                *("c1-256", "c3-512") * 4, "c1-512", "c3-1024", "m", *("c1-512", "c3-1024") * 2,
                "c3-1024", "c3-1024-s2", "c3-1024", "c3-1024")   # 24 convolutional layers


@dataclass
class Config:
    layers: tuple = ("c3-16-s2", "c3-32", "m", "c3-64", "m", "c1-32", "c3-64")
    fc_width: int = 256         # first fully connected layer (4096 in the paper)
    image_size: int = 48        # 448 in the paper
    S: int = 6                  # grid size (7)
    B: int = 2                  # boxes per cell (2)
    C: int = 3                  # classes (20 for PASCAL VOC)
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    dropout: float = 0.0        # 0.5 after the first FC layer in the paper
    n_train: int = 1500
    n_test: int = 300
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    nms_iou: float = 0.5
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(layers=PAPER_LAYERS, fc_width=4096, image_size=448, S=7, B=2, C=20, dropout=0.5, epochs=16),
    "gpu": Config(layers=("c3-32", "m", "c3-64", "m", "c1-64", "c3-128", "m", "c1-128", "c3-256", "c3-256"),
                  fc_width=1024, image_size=96, S=6, n_train=30000, n_test=1000, epochs=40, batch_size=128,
                  amp_bf16=True),
}


class YOLO(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        layers, c, stride = [], 3, 1
        for spec in cfg.layers:
            if spec == "m":
                layers, stride = layers + [nn.MaxPool2d(2)], stride * 2
                continue
            k, out, *s = spec[1:].split("-")
            s = int(s[0][1:]) if s else 1
            layers += [nn.Conv2d(c, int(out), int(k), s, int(k) // 2), nn.LeakyReLU(0.1)]  # sec. 2.2: leaky ReLU
            c, stride = int(out), stride * s
        self.features = nn.Sequential(*layers)
        side = cfg.image_size // stride                           # 7 for the paper's 448 input
        self.S, self.depth = cfg.S, cfg.B * 5 + cfg.C
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, cfg.fc_width), nn.LeakyReLU(0.1),
                                  nn.Dropout(cfg.dropout), nn.Linear(cfg.fc_width, cfg.S * cfg.S * self.depth))

    def forward(self, x):                                          # (N, 3, H, W)
        return self.head(self.features(x)).view(-1, self.S, self.S, self.depth)  # (N, S, S, B*5 + C)


def build_model(cfg: Config) -> nn.Module:
    return YOLO(cfg)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of boxes (x1, y1, x2, y2), broadcast over leading dims: (..., 4), (..., 4) -> (...)."""
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda z: (z[..., 2] - z[..., 0]).clamp(min=0) * (z[..., 3] - z[..., 1]).clamp(min=0)
    return inter / (area(a) + area(b) - inter + 1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: keep the best box, drop those overlapping it by > threshold, repeat."""
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
    """Noisy images with 1-3 non-overlapping rectangles / discs / triangles, at most one object per grid cell."""
    g, size = torch.Generator().manual_seed(seed), cfg.image_size
    palette = torch.tensor([[0.9, 0.3, 0.2], [0.2, 0.8, 0.3], [0.3, 0.4, 0.95]])
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    images = 0.45 + 0.1 * torch.rand(n, 3, 1, 1, generator=g) + 0.12 * torch.randn(n, 3, size, size, generator=g)
    boxes, labels = [], []
    for i in range(n):
        bx, lb = [], []
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            w, h = (size * (0.2 + 0.3 * torch.rand(2, generator=g))).tolist()
            x1, y1 = ((size - torch.tensor([w, h])) * torch.rand(2, generator=g)).tolist()
            box = torch.tensor([x1, y1, x1 + w, y1 + h])
            cell = ((box[:2] + box[2:]) / 2 * cfg.S / size).floor()
            if any(box_iou(box, b) > 0 or (cell == ((b[:2] + b[2:]) / 2 * cfg.S / size).floor()).all() for b in bx):
                continue                                           # keep objects apart and one per cell
            c = int(torch.randint(cfg.C, (1,), generator=g))
            u, v = (xx - x1) / w, (yy - y1) / h
            inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1) & (   # rectangle, disc, triangle (apex up)
                [u >= 0, (2 * u - 1) ** 2 + (2 * v - 1) ** 2 <= 1, (2 * u - 1).abs() <= v][c % 3])
            colour = palette[c % 3] + 0.1 * torch.randn(3, generator=g)
            images[i][:, inside] = colour[:, None] + 0.05 * torch.randn(3, int(inside.sum()), generator=g)
            bx.append(box), lb.append(c)
        boxes.append(torch.stack(bx) / size), labels.append(torch.tensor(lb))   # boxes normalised to [0, 1]
    return images, boxes, labels


def encode_targets(cfg: Config, boxes, labels):
    """Per cell: has-object flag, (x, y) offset in the cell, (w, h) relative to the image, one-hot class."""
    n, S = len(boxes), cfg.S
    obj, target = torch.zeros(n, S, S), torch.zeros(n, S, S, 4 + cfg.C)
    for k, (bx, lb) in enumerate(zip(boxes, labels)):
        centre, wh = (bx[:, :2] + bx[:, 2:]) / 2, bx[:, 2:] - bx[:, :2]
        col, row = (centre * S).floor().long().unbind(1)
        obj[k, row, col] = 1
        target[k, row, col] = torch.cat([centre * S - (centre * S).floor(), wh, F.one_hot(lb, cfg.C).float()], 1)
    return obj, target


def decode_boxes(p: torch.Tensor) -> torch.Tensor:
    """(N, S, S, B, 4+) cell-relative (x, y, sqrt w, sqrt h) -> (N, S, S, B, 4) boxes (x1, y1, x2, y2) in [0, 1]."""
    S = p.shape[1]
    r = torch.arange(S, device=p.device)
    cx, cy = (r.view(1, 1, S, 1) + p[..., 0]) / S, (r.view(1, S, 1, 1) + p[..., 1]) / S   # cell offset + (x, y)
    w, h = p[..., 2].clamp(min=0) ** 2, p[..., 3].clamp(min=0) ** 2
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def yolo_loss(pred, obj, target, cfg: Config):
    """Eq. 3: sum-squared error; predictor j of cell i is "responsible" if its box has the highest IoU."""
    p = pred[..., :cfg.B * 5].unflatten(-1, (cfg.B, 5))               # (N, S, S, B, 5)
    t_xy, t_wh, t_cls = target[..., :2], target[..., 2:4], target[..., 4:]
    t_box = decode_boxes(torch.cat([t_xy, t_wh.sqrt()], -1)[..., None, :])   # (N, S, S, 1, 4)
    with torch.no_grad():
        iou = box_iou(decode_boxes(p), t_box)                      # (N, S, S, B)
    one_obj = F.one_hot(iou.argmax(-1), cfg.B) * obj[..., None]    # 1_ij^obj
    coord = ((p[..., :2] - t_xy[..., None, :]) ** 2).sum(-1) \
        + ((p[..., 2:4] - t_wh[..., None, :].sqrt()) ** 2).sum(-1)  # sqrt(w), sqrt(h) are the outputs themselves
    conf_obj = (p[..., 4] - iou) ** 2                              # target confidence = IoU(pred, truth)
    cls = ((pred[..., cfg.B * 5:] - t_cls) ** 2).sum(-1)           # 1_i^obj: class SSE once per cell
    loss = (cfg.lambda_coord * one_obj * coord + one_obj * conf_obj + cfg.lambda_noobj * (1 - one_obj) * p[..., 4] ** 2
            ).sum() + (obj * cls).sum()
    return loss / pred.shape[0]


def detect(pred, cfg: Config, score_min: float = 0.01):
    """Sec. 2: class-specific confidence Pr(class_i|object) * confidence, then per-class NMS."""
    out = []
    for p, boxes in zip(pred, decode_boxes(pred[..., :cfg.B * 5].unflatten(-1, (cfg.B, 5)))):
        scores = p[..., 4:cfg.B * 5:5].clamp(0, 1)[..., None] * p[..., None, cfg.B * 5:].clamp(0, 1)  # (S, S, B, C)
        boxes, scores = boxes.reshape(-1, 4), scores.reshape(-1, cfg.C)
        bx, sc, lb = [], [], []
        for c in range(cfg.C):
            m = scores[:, c] > score_min
            keep = nms(boxes[m], scores[m, c], cfg.nms_iou)
            bx.append(boxes[m][keep]), sc.append(scores[m, c][keep]), lb.append(torch.full((len(keep),), c))
        out.append((torch.cat(bx), torch.cat(sc), torch.cat(lb)))
    return out


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    x, boxes, labels = make_scenes(cfg, cfg.n_train, cfg.seed + 1)
    xt, boxes_t, labels_t = make_scenes(cfg, cfg.n_test, cfg.seed + 2)   # held-out split
    obj, target = encode_targets(cfg, boxes, labels)
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
                pred = model(x[idx].to(device, memory_format=torch.channels_last)).float()  # (N, S, S, B*5 + C)
            loss = yolo_loss(pred, obj[idx].to(device), target[idx].to(device), cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad(), torch.autocast(**amp):
        pred = torch.cat([model(xt[i].to(device)).float().cpu() for i in torch.arange(cfg.n_test).split(256)])
    value = mean_average_precision(detect(pred, cfg), list(zip(boxes_t, labels_t)), cfg.C)
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
