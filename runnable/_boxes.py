"""Box helpers shared by the detection runnables: IoU, greedy NMS, PASCAL VOC mAP, RoI max pooling.

None of these is a detection paper's contribution (faster-rcnn, fpn, mask-rcnn, pfpnet and yolo all
use them), so they live here once. Boxes are (x1, y1, x2, y2) in pixels (or any one unit).
"""

import torch
import torch.nn.functional as F


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of boxes, broadcast over leading dims: (..., 4), (..., 4) -> (...).

    Boxes that only touch have IoU 0; an empty box (x2 <= x1) has area 0.
    """
    lt, rb = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda z: (z[..., 2:] - z[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a) + area(b) - inter + 1e-9)


def nms_mask(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression, batched: boxes (B, N, 4), scores (B, N) -> keep (B, N).

    Visiting boxes from the highest score down, a box is kept unless a box already kept overlaps
    it by IoU > iou_threshold.
    """
    order = scores.argsort(1, descending=True)  # (B, N)
    boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4))  # sorted by score
    iou = box_iou(boxes[:, :, None], boxes[:, None])  # (B, N, N)
    keep = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    for i in range(scores.shape[1] - 1):
        keep[:, i + 1 :] &= ~(keep[:, i : i + 1] & (iou[:, i, i + 1 :] > iou_threshold))
    return torch.zeros_like(keep).scatter(1, order, keep)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS of one image: boxes (N, 4), scores (N,) -> indices kept, highest score first."""
    order = scores.argsort(descending=True)
    return order[nms_mask(boxes[None], scores[None], iou_threshold)[0][order]]


def mean_average_precision(dets, gts, n_classes: int, iou_threshold: float = 0.5) -> float:
    """PASCAL VOC mAP: average precision per class (all-point interpolation), averaged over classes.

    dets[i] = (boxes (D, 4), scores (D,), labels (D,)) and gts[i] = (boxes (G, 4), labels (G,)) for
    image i. Detections of a class are ranked by score over all images; each is a true positive if
    its best-overlapping ground truth of that class in its image has IoU >= iou_threshold and was
    not already taken by a higher-scored detection. AP is the area under the precision envelope.
    """
    aps = []
    for c in range(n_classes):
        found = sorted(
            (
                (float(s), i, b)
                for i, (bx, sc, lb) in enumerate(dets)
                for b, s in zip(bx[lb == c], sc[lb == c])
            ),
            key=lambda t: -t[0],
        )
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
        precision = torch.cat(
            [torch.zeros(1), tp.cumsum(0) / torch.arange(1, len(tp) + 1), torch.zeros(1)]
        )
        precision = precision.flip(0).cummax(0).values.flip(0)  # precision envelope
        aps.append(float(((recall[1:] - recall[:-1]) * precision[1:]).sum()))
    return sum(aps) / n_classes


def roi_pool(features: torch.Tensor, rois: torch.Tensor, P: int, scale: float) -> torch.Tensor:
    """Fast R-CNN RoI max pooling: features (B, C, H, W), rois (R, 5) = (b, x1, y1, x2, y2) in
    pixels -> (R, C, P, P).

    The RoI is rounded to feature cells (both ends inclusive) and cut into P x P bins with floor /
    ceil edges, as F.adaptive_max_pool2d cuts a crop; each bin takes the max of its cells.
    """
    (B, C, H, W), S = features.shape, -(-max(features.shape[-2:]) // P) + 1  # S: widest bin
    xy = (rois[:, 1:] * scale).round().long()

    def cells(lo, hi, L):  # (R, P*S) cell per bin and slot
        lo, hi = lo.clamp(0, L - 1)[:, None, None], hi.clamp(0, L - 1)[:, None, None]
        i, s = torch.arange(P, device=lo.device)[:, None], torch.arange(S, device=lo.device)
        n = (hi - lo).clamp(min=0) + 1
        return torch.minimum(lo + (i * n) // P + s, lo - ((-(i + 1) * n) // P) - 1).flatten(1)

    ix, iy = cells(xy[:, 0], xy[:, 2], W), cells(xy[:, 1], xy[:, 3], H)  # the last cell repeats
    index = (rois[:, 0].long()[:, None, None] * H + iy[:, :, None]) * W + ix[:, None, :]
    f = features.permute(0, 2, 3, 1).reshape(B * H * W, C)[index]  # (R, P*S, P*S, C)
    return F.max_pool2d(f.permute(0, 3, 1, 2), S)  # (R, C, P, P)


def encode(boxes: torch.Tensor, anchors: torch.Tensor, w=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Faster R-CNN's eq. 2, boxes (x1, y1, x2, y2) relative to anchors or RoIs:
    t_x = (x - x_a) / w_a, t_y = (y - y_a) / h_a, t_w = log(w / w_a), t_h = log(h / h_a),
    each times its weight ``w`` (Mask R-CNN's heads use 10, 10, 5, 5)."""
    (c_a, wh_a), (c, wh) = [
        ((b[..., 2:] + b[..., :2]) / 2, b[..., 2:] - b[..., :2]) for b in (anchors, boxes)
    ]
    return torch.cat([(c - c_a) / wh_a, (wh / wh_a).log()], -1) * torch.tensor(w)


def decode(t: torch.Tensor, anchors: torch.Tensor, w=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """The inverse of :func:`encode` (sizes clamped at e^4 times the anchor's)."""
    t = t / torch.tensor(w, device=t.device)
    c_a, wh_a = (anchors[..., 2:] + anchors[..., :2]) / 2, anchors[..., 2:] - anchors[..., :2]
    c, wh = c_a + t[..., :2] * wh_a, wh_a * t[..., 2:].clamp(max=4).exp()
    return torch.cat([c - wh / 2, c + wh / 2], -1)


def flat_rois(rois: torch.Tensor) -> torch.Tensor:
    """(B, R, 4) boxes per image -> (B*R, 5) rows (image index, x1, y1, x2, y2)."""
    b = torch.arange(rois.shape[0], device=rois.device).repeat_interleave(rois.shape[1])
    return torch.cat([b[:, None].to(rois.dtype), rois.flatten(0, 1)], 1)


def paste_masks(probs: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(R, m, m) probabilities in box frames -> (R, size, size) in the image, bilinearly."""
    p = torch.arange(size, dtype=boxes.dtype) + 0.5  # pixel centres
    g = (p - boxes[:, :2, None]) / (boxes[:, 2:, None] - boxes[:, :2, None]) * 2 - 1  # (R, 2, size)
    grid = torch.stack(
        [g[:, 0, None, :].expand(-1, size, -1), g[:, 1, :, None].expand(-1, -1, size)], -1
    )
    return F.grid_sample(probs[:, None], grid, align_corners=False, padding_mode="zeros")[:, 0]


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of (R, S, S) boolean masks, one per row."""
    return (a & b).sum((1, 2)) / (a | b).sum((1, 2)).clamp(min=1)
