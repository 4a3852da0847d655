"""Generated scenes of simple shapes for the detection and segmentation runnables.

Each image holds a few non-overlapping objects on a noisy background of a random colour. An
object's class is its shape (rectangle, disc, triangle, ...); its colour is drawn at random,
independently of the class, and only kept far enough from the background to stay visible. So no
pixel's colour tells its class: a model has to see the shape (the colour = class shortcut of
earlier versions let a per-pixel colour lookup label the shapes).
"""

import math
from dataclasses import dataclass

import torch

from runnable._boxes import box_iou

SHAPES = ("rectangle", "triangle", "cross", "disc", "diamond", "inverted triangle")


def shape_mask(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-test of shape `shape` in box-relative coordinates u, v (0..1 inside the box)."""
    inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    x, y = 2 * u - 1, 2 * v - 1  # -1..1 inside the box
    return (
        inside
        & [
            x.abs() <= 1,
            x.abs() <= v,
            (x.abs() <= 0.4) | (y.abs() <= 0.4),
            x**2 + y**2 <= 1,
            x.abs() + y.abs() <= 1,
            x.abs() <= 1 - v,
        ][shape]
    )


@dataclass
class Scenes:
    images: torch.Tensor  # (n, 3, S, S)
    boxes: list  # per image (k, 4): x1, y1, x2, y2 in pixels
    labels: list  # per image (k,): class 0 .. n_classes - 1
    masks: list  # per image (k, S, S) bool: the object's pixels

    def padded(self, G: int):
        """Boxes (n, G, 4) and labels (n, G), padded with zero boxes and label -1."""
        boxes, labels = torch.zeros(len(self.boxes), G, 4), torch.full((len(self.boxes), G), -1)
        for i, (b, lb) in enumerate(zip(self.boxes, self.labels)):
            boxes[i, : len(b)], labels[i, : len(b)] = b, lb
        return boxes, labels

    def label_map(self) -> torch.Tensor:
        """(n, S, S) per-pixel class: 0 background, c + 1 inside an object of class c."""
        out = torch.zeros(self.images.shape[0], *self.images.shape[-2:], dtype=torch.long)
        for i, (m, lb) in enumerate(zip(self.masks, self.labels)):
            for mk, c in zip(m, lb):
                out[i][mk] = c + 1
        return out


def make_scenes(
    n: int,
    size: int,
    seed: int,
    n_classes: int = 3,
    side=(0.2, 0.5),
    max_aspect: float = 1.6,
    max_objects: int = 3,
    grid: int = 0,
    noise: float = 0.08,
) -> Scenes:
    """n images of size x size with 1..max_objects non-overlapping shapes of class < n_classes.

    An object's side sqrt(w h) is log-uniform in side (fractions of the image), its aspect w / h
    log-uniform within max_aspect. grid > 0 also keeps box centres in distinct cells of a grid x
    grid partition (one object per YOLO cell). Class c is drawn as SHAPES[c]; classes past
    len(SHAPES) reuse the shapes (only for presets that state a dataset's class count). Objects
    that would overlap are skipped.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    bg = 0.4 + 0.2 * torch.rand(n, 3, 1, 1, generator=g)
    images = bg + noise * torch.randn(n, 3, size, size, generator=g)
    boxes, labels, masks = [], [], []
    lo, hi = math.log(side[0] * size), math.log(side[1] * size)
    for i in range(n):
        bx, lb, mk = [], [], []
        for _ in range(int(torch.randint(1, max_objects + 1, (1,), generator=g))):
            s = math.exp(lo + (hi - lo) * float(torch.rand(1, generator=g)))
            a = max_aspect ** (2 * float(torch.rand(1, generator=g)) - 1)
            w, h = min(s * a**0.5, size - 1), min(s / a**0.5, size - 1)
            x1, y1 = ((size - torch.tensor([w, h])) * torch.rand(2, generator=g)).tolist()
            box, c = (
                torch.tensor([x1, y1, x1 + w, y1 + h]),
                int(torch.randint(n_classes, (1,), generator=g)),
            )
            colour = torch.rand(3, generator=g)
            while (colour - bg[i, :, 0, 0]).abs().max() < 0.3:  # visible, whatever the class
                colour = torch.rand(3, generator=g)
            cell = lambda b: ((b[:2] + b[2:]) / 2 * grid / size).floor()  # noqa: E731
            if any(
                box_iou(box, b) > 0 or (grid and bool((cell(box) == cell(b)).all())) for b in bx
            ):
                continue  # keep objects apart
            inside = shape_mask(c % len(SHAPES), (xx - x1) / w, (yy - y1) / h)
            images[i][:, inside] = colour[:, None] + noise / 2 * torch.randn(
                3, int(inside.sum()), generator=g
            )
            bx.append(box), lb.append(c), mk.append(inside)
        boxes.append(torch.stack(bx)), labels.append(torch.tensor(lb))
        masks.append(torch.stack(mk))
    return Scenes(images, boxes, labels, masks)
