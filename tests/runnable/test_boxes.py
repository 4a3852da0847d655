"""The shared box helpers (runnable/_boxes.py) against oracles that need no torchvision: IoUs
checked by hand, a brute-force NMS, hand-ranked APs, RoI pooling as adaptive_max_pool2d of the
quantized crop; and the shared scenes (runnable/_shapes.py): no colour gives the class away."""

import itertools

import torch
import torch.nn.functional as F

from runnable._boxes import box_iou, mean_average_precision, nms, nms_mask, roi_pool
from runnable._shapes import make_scenes


def test_iou_of_hand_checked_boxes():
    a = torch.tensor([0.0, 0.0, 2.0, 2.0])
    assert abs(box_iou(a, torch.tensor([1.0, 1.0, 3.0, 3.0])).item() - 1 / 7) < 1e-6  # 1 / (4+4-1)
    assert abs(box_iou(a, torch.tensor([0.0, 0.0, 2.0, 1.0])).item() - 0.5) < 1e-6  # inside
    assert box_iou(a, torch.tensor([2.0, 0.0, 3.0, 1.0])).item() == 0.0  # touching
    assert abs(box_iou(a, a).item() - 1) < 1e-6
    many = box_iou(a[None, None], torch.tensor([[[1.0, 1, 3, 3], [0, 0, 1, 1]]]))  # broadcast
    assert many.shape == (1, 2) and abs(many[0, 1].item() - 0.25) < 1e-6


def brute_force_nms(boxes, scores, threshold):
    """The definition, in plain Python: walk boxes by falling score; keep one unless a kept box
    overlaps it by more than the threshold."""

    def iou(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
        return w * h / (area(p) + area(q) - w * h)

    kept = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        if all(iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(i)
    return kept


def test_nms_equals_brute_force_on_random_clusters():
    g = torch.Generator().manual_seed(0)
    for _, threshold in itertools.product(range(20), (0.3, 0.5, 0.7)):
        centres = torch.rand(3, 2, generator=g) * 40
        xy = centres[torch.randint(3, (12,), generator=g)] + torch.randn(12, 2, generator=g) * 3
        wh = 6 + torch.rand(12, 2, generator=g) * 8
        boxes, scores = torch.cat([xy, xy + wh], 1), torch.rand(12, generator=g)
        expected = brute_force_nms(boxes.tolist(), scores.tolist(), threshold)
        assert nms(boxes, scores, threshold).tolist() == expected
        mask = nms_mask(boxes[None], scores[None], threshold)[0]
        assert mask.nonzero()[:, 0].tolist() == sorted(expected)


def test_nms_keeps_the_best_of_an_overlapping_pair_and_a_separate_box():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.8, 0.9, 0.7, 0.6])
    # box 1 wins; box 0 overlaps it by 81/119 = 0.68 > 0.5 and box 3 by 72/118 = 0.61
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]  # box 3 vs box 0: IoU 0.9 > 0.7


def test_map_of_hand_checked_rankings():
    gts = [
        (torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0])),
        (torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0])),
    ]
    dets = [
        (
            torch.tensor([[0.0, 0, 10, 10], [50.0, 50, 60, 60]]),
            torch.tensor([0.9, 0.8]),
            torch.tensor([0, 0]),
        ),
        (torch.tensor([[1.0, 0, 10, 10]]), torch.tensor([0.7]), torch.tensor([0])),
    ]
    # ranked: hit (P 1, R 0.5), miss, hit (P 2/3, R 1) -> AP = 0.5 * 1 + 0.5 * 2/3
    assert abs(mean_average_precision(dets, gts, 1) - (0.5 + 1 / 3)) < 1e-6
    one = [(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0]))]
    first_miss = [
        (
            torch.tensor([[0.0, 0, 10, 10], [50.0, 50, 60, 60]]),
            torch.tensor([0.5, 0.9]),
            torch.tensor([0, 0]),
        )
    ]
    assert abs(mean_average_precision(first_miss, one, 1) - 0.5) < 1e-6  # FP ranked first
    twice = [
        (
            torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10]]),
            torch.tensor([0.9, 0.8]),
            torch.tensor([0, 0]),
        )
    ]
    assert abs(mean_average_precision(twice, one, 1) - 1.0) < 1e-6  # a duplicate is only FP
    wrong_class = [(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.9]), torch.tensor([1]))]
    assert mean_average_precision(wrong_class, one, 2) == 0.0  # class 1 has no gt


def test_roi_pool_equals_adaptive_max_pool_over_the_quantized_crop():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 5, 8, 10, generator=g)
    rois = torch.tensor(
        [
            [0, 3.3, 5.1, 20.7, 17.9],
            [1, 0, 0, 40, 32],
            [1, 10.2, 2.6, 13.1, 9.9],
            [0, 0.4, 20.2, 6, 23.8],
            [1, -5, -3, 50, 50.0],
        ]
    )
    out = roi_pool(features, rois, 4, 0.25)
    for r, (b, *xyxy) in enumerate(rois.tolist()):
        x1, y1, x2, y2 = (round(v * 0.25) for v in xyxy)
        x1, x2, y1, y2 = (
            min(max(x1, 0), 9),
            min(max(x2, 0), 9),
            min(max(y1, 0), 7),
            min(max(y2, 0), 7),
        )
        ref = F.adaptive_max_pool2d(
            features[int(b), :, y1 : y2 + 1, x1 : x2 + 1], 4
        )  # torch's bins
        assert (out[r] - ref).abs().max() <= 1e-5


def test_scenes_hold_apart_shapes_whose_colour_says_nothing_of_the_class():
    s = make_scenes(400, 32, 0, n_classes=3, side=(0.25, 0.5))
    assert s.images.shape == (400, 3, 32, 32) and len(s.boxes) == len(s.labels) == 400
    for b, m in zip(s.boxes, s.masks):
        assert (box_iou(b[:, None], b[None]) > 0).sum() == len(b)  # only with themselves
        assert all(mk.any() for mk in m)
    colour = torch.stack([img[:, mk].mean(1) for img, m in zip(s.images, s.masks) for mk in m])
    label = torch.cat(s.labels)
    means = torch.stack([colour[label == c].mean(0) for c in range(3)])  # (class, rgb)
    assert (means - means.mean(0)).abs().max() < 0.05  # same colours per class
    lm = s.label_map()
    assert set(lm.unique().tolist()) == {0, 1, 2, 3}


def test_one_object_per_grid_cell_when_asked():
    s = make_scenes(200, 48, 1, grid=6)
    for b in s.boxes:
        cells = ((b[:, :2] + b[:, 2:]) / 2 * 6 / 48).floor()
        assert len(cells.unique(dim=0)) == len(b)
