"""Synthetic articulated figures for the DPM runnable: a body block and four bars that move
about their anchors (the "parts"), clutter, and decoys whose parts are wrong.

Not the paper's contribution (the paper trains on PASCAL VOC), so kept apart from
runnable/dpm.py, which holds HOG features, the deformable part model and latent-SVM training.
"""

from __future__ import annotations

import math

import torch


def figures(N, cy, cx, Hw, Ww, cfg, U, wrong=0):
    """Body block + 4 randomly displaced bars; decoys swap `wrong` parts for copies of another part."""
    a = (
        torch.tensor(
            [
                [-0.34 * Hw, 0, 0],
                [0, -0.34 * Ww, math.pi / 2],
                [0, 0.34 * Ww, math.pi / 4],
                [0.34 * Hw, 0, 3 * math.pi / 4],
            ]
        )
        .expand(N, 4, 3)
        .clone()
    )  # (dy, dx, angle) of top, left, right, bottom
    if wrong:  # parts order[:, :wrong] go missing,
        order = U(N, 4).argsort(1)[..., None].expand(N, 4, 3)  # replaced by part order[:, wrong]
        a.scatter_(
            1, order[:, :wrong], a.gather(1, order[:, wrong : wrong + 1]).expand(N, wrong, 3)
        )
    oy, ox, ang = a.unbind(-1)
    py = cy[:, None] + oy + (U(N, 4) * 2 - 1) * cfg.part_jitter * Hw  # (N, 4) part centres
    px = cx[:, None] + ox + (U(N, 4) * 2 - 1) * cfg.part_jitter * Ww
    L, T = 0.28 * min(Hw, Ww), max(2.0, Ww / 16)
    parts = torch.stack(
        [py, px, ang, torch.full_like(py, L), torch.full_like(py, T), 0.6 + 0.4 * U(N, 4)], -1
    )
    body = torch.stack(
        [
            cy,
            cx,
            torch.zeros(N),
            torch.full((N,), 0.3 * Ww),
            torch.full((N,), 0.3 * Hw),
            0.6 + 0.4 * U(N),
        ],
        -1,
    )
    return torch.cat([body[:, None], parts], 1)  # (N, 5, 6)


def make_data(cfg, n_pos: int, n_bg: int, g):
    """Object images (window + a root cell of slack), their box's root cell, and background images.

    ``cfg`` is the DPM runnable's Config (cell, root_size, part_jitter, components, bg_size)."""
    U = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    clutter = lambda N, n, H, W: torch.stack(
        [
            U(N, n) * H,
            U(N, n) * W,
            U(N, n) * math.pi,
            3 + 8 * U(N, n),  # noqa: E731
            1 + 2 * U(N, n),
            0.3 + 0.7 * U(N, n),
        ],
        -1,
    )  # random bars

    def draw(shapes, H, W, noise=0.05):
        """Draw oriented boxes (cy, cx, angle, length, thickness, value) (N, S, 6) on noisy canvases."""
        y, x = torch.arange(H).float()[:, None], torch.arange(W).float()[None]
        cy, cx, a, L, T, val = [t[..., None, None] for t in shapes.unbind(-1)]  # (N, S, 1, 1) each
        t = (x - cx) * a.cos() + (y - cy) * a.sin()
        n = (y - cy) * a.cos() - (x - cx) * a.sin()
        ink = (((t.abs() <= L / 2) & (n.abs() <= T / 2)) * val).amax(1)  # (N, H, W)
        return (ink + noise * torch.randn(ink.shape, generator=g))[:, None]  # (N, 1, H, W)

    Hw, Ww = 2 * cfg.cell * cfg.root_size[0], 2 * cfg.cell * cfg.root_size[1]  # window in pixels
    m = cfg.cell  # slack on each side
    jy, jx = (U(n_pos) * 2 - 1) * m, (U(n_pos) * 2 - 1) * m
    pos = draw(
        torch.cat(
            [
                figures(n_pos, m + Hw / 2 + jy, m + Ww / 2 + jx, Hw, Ww, cfg, U),
                clutter(n_pos, 3, Hw + 2 * m, Ww + 2 * m),
            ],
            1,
        ),
        Hw + 2 * m,
        Ww + 2 * m,
    )
    # root cell nearest the box (2 x 2 placements); components first split round-robin (the paper: by aspect)
    z0 = (
        torch.arange(n_pos) % cfg.components * 4
        + ((m + jy) / (2 * m)).round().long() * 2
        + ((m + jx) / (2 * m)).round().long()
    )
    B = cfg.bg_size  # decoys tile the background
    tiles = [((i + 0.5) * Hw, (j + 0.5) * Ww) for i in range(B // Hw) for j in range(B // Ww)]
    decoys = [
        figures(
            n_bg,
            cy + (U(n_bg) * 2 - 1) * m,
            cx + (U(n_bg) * 2 - 1) * m,
            Hw,
            Ww,
            cfg,
            U,
            wrong=1 + t % 2,
        )
        for t, (cy, cx) in enumerate(tiles)
    ]
    bg = draw(torch.cat(decoys + [clutter(n_bg, B * B // 1000, B, B)], 1), B, B)
    return pos, z0, bg
