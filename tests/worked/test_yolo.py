"""YOLO's worked example (papers/yolo.yaml › teaching.worked_example): the 7 x 7 x 30 output of
the paper preset, one dog encoded into its responsible cell and decoded back by the runnable,
the class-specific score, and what the square roots do to a width error on a small and a large
box. Every number the test computes must appear in both languages."""

from __future__ import annotations

import math

import pytest
import torch

from ..conftest import runnable, stated_in

Y = runnable("yolo")
CFG = Y.PRESETS["paper"]
IMAGE = 448
BOX = (144.0, 188.0, 256.0, 412.0)  # the dog, corners in pixels
stated = stated_in("yolo")


def test_the_paper_preset_outputs_7_by_7_by_30():
    with torch.device("meta"):
        out = Y.YOLO(CFG)(torch.empty(1, 3, IMAGE, IMAGE))
    S, depth = out.shape[1], out.shape[3]
    assert (S, CFG.B, CFG.C, depth) == (7, 2, 20, 30)
    assert CFG.B * 5 == 10 and S * S * depth == 1470
    stated(
        "$S = 7$",
        "$B = 2$",
        "$C = 20$",
        f"${S} \\times {S} \\times {depth}$",
        f"| {S * S * depth} |",
        f"| {depth} |",
        f"${IMAGE // S} \\times {IMAGE // S}$",
    )
    assert S * S * CFG.B == 98
    stated("$7 \\cdot 7 \\cdot 2 = 98$", "97")


def test_one_object_is_encoded_in_its_cell_and_decoded_back():
    box = torch.tensor([BOX]) / IMAGE
    obj, target = Y.encode_targets(CFG, [box], [torch.tensor([11])])
    ((_, row, col),) = obj.nonzero().tolist()
    x, y, w, h = (round(v, 4) for v in target[0, row, col, :4].tolist())
    assert (row, col) == (4, 3) and (x, y, w, h) == (0.125, 0.6875, 0.25, 0.5)
    cx, cy = (BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2
    assert (cx, cy) == (200, 300) and (BOX[2] - BOX[0], BOX[3] - BOX[1]) == (112, 224)
    stated(
        "(200, 300)",
        "112 \\times 224",
        "(144, 188)",
        "(256, 412)",
        f"\\lfloor 200/64 \\rfloor = {col}",
        f"\\lfloor 300/64 \\rfloor = {row}",
        f"= {x}$",
        f"= {y}$",
        f"= {w}$",
        f"= {h}$",
        f"\\sqrt{{w}} = {math.sqrt(w)}$",
        f"\\sqrt{{h}} \\approx {math.sqrt(h):.4f}$",
    )
    p = torch.zeros(1, 7, 7, 2, 5)
    p[0, row, col, 0, :4] = torch.tensor([x, y, math.sqrt(w), math.sqrt(h)])
    corners = (Y.decode_boxes(p)[0, row, col, 0] * IMAGE).tolist()
    assert corners == pytest.approx(BOX, abs=1e-3)
    assert ((col + x) / 7 * IMAGE, (row + y) / 7 * IMAGE) == (200, 300)
    stated(f"(3 + {x})/7 \\cdot 448", f"(4 + {y})/7 \\cdot 448")


def test_class_specific_score():
    stated(f"$0.8 \\times 0.9 = {0.8 * 0.9:.2f}$")


def test_square_roots_charge_a_small_box_more():
    large = (math.sqrt(0.55) - math.sqrt(0.5)) ** 2
    small = (math.sqrt(0.10) - math.sqrt(0.05)) ** 2
    stated(
        f"\\approx {large:.4f}$",
        f"\\approx {small:.4f}$",
        f"{0.05**2:.4f}",
        f"{round(small / large)} ",
    )
    assert round(small / large) == 7
    stated(
        f"\\lambda_{{\\text{{noobj}}}} = {CFG.lambda_noobj}$",
        f"\\lambda_{{\\text{{coord}}}} = {CFG.lambda_coord:g}$",
    )
