"""YOLO v1 runnable: the S x S grid detector passes the mAP gate on held-out shapes where the same
net with one cell (S = 1) fails it (seeds 0-2); the paper's 7x7x30 output on the meta device; eq. 3
oracles, with and without its weights. IoU / NMS / mAP are tested in test_boxes.py."""

import json
from dataclasses import replace

import pytest
import torch

from tests.conftest import runnable

yolo = runnable("yolo")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_detector_passes_the_map_gate_and_a_single_cell_fails_it(seed):
    result = yolo.train(replace(yolo.PRESETS["tiny"], seed=seed))
    assert result["metric"] == yolo.GATE[0] == "map50" and result["seed"] == seed
    assert result["value"] >= yolo.GATE[2], result
    assert not result["ablation"]["value"] >= yolo.GATE[2], result
    assert result["passed"] and result["ablation"]["name"] == "no grid (S = 1)"
    assert len(result["history"]["idea"]) == len(result["history"]["ablation"]) >= 2


def test_paper_preset_has_24_convs_2_fcs_and_outputs_7x7x30_from_448x448():
    with torch.device("meta"):
        model = yolo.build_model(yolo.PRESETS["paper"])
        out = model(torch.empty(1, 3, 448, 448))
    assert out.shape == (1, 7, 7, 30)  # S x S x (B * 5 + C), sec. 2
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 24
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [
        4096,
        1470,
    ]


def perfect_prediction(cfg):
    boxes, labels = [torch.tensor([[0.1, 0.2, 0.4, 0.4]])], [torch.tensor([2])]
    obj, target = yolo.encode_targets(cfg, boxes, labels)
    pred = torch.zeros(1, 2, 2, 13)
    pred[0, 0, 0, 0:2] = target[0, 0, 0, :2]  # x, y offsets in cell (0, 0)
    wh = target[0, 0, 0, 2:4]
    pred[0, 0, 0, 2:4] = wh.sqrt() if cfg.sqrt_wh else wh  # sqrt(w), sqrt(h) or w, h
    pred[0, 0, 0, 4] = 1.0  # confidence = IoU = 1
    pred[0, 0, 0, 10:] = torch.tensor([0.0, 0.0, 1.0])  # class probabilities
    return pred, obj, target


def test_eq3_loss_is_zero_for_a_perfect_prediction_and_weights_noobj_by_half():
    cfg = yolo.Config(S=2, B=2, C=3)
    pred, obj, target = perfect_prediction(cfg)
    assert yolo.yolo_loss(pred, obj, target, cfg).item() < 1e-10
    pred[0, 1, 1, 9] = 1.0  # a wrong confidence, empty cell
    assert abs(yolo.yolo_loss(pred, obj, target, cfg).item() - cfg.lambda_noobj) < 1e-6


def test_eq3_weights_coordinates_by_five_on_square_roots_and_the_ablation_does_not():
    cfg = yolo.Config(S=2, B=2, C=3)
    plain = replace(cfg, lambda_coord=1.0, lambda_noobj=1.0, sqrt_wh=False)
    for c, weight in ((cfg, 5.0), (plain, 1.0)):
        pred, obj, target = perfect_prediction(c)
        pred[0, 0, 0, 0] += 0.1  # x off by 0.1 of a cell
        # the confidence target is the IoU of the shifted box: (1 - 0.05 / 0.3) / (1 + 0.05 / 0.3)
        iou = (0.3 - 0.05) / (0.3 + 0.05)
        expected = weight * 0.01 + (1 - iou) ** 2
        assert abs(yolo.yolo_loss(pred, obj, target, c).item() - expected) < 1e-5
        pred, obj, target = perfect_prediction(c)
        pred[0, 1, 1, 4] = 1.0  # confidence in an empty cell
        assert abs(yolo.yolo_loss(pred, obj, target, c).item() - c.lambda_noobj) < 1e-6
    pred, obj, target = perfect_prediction(plain)  # ablation: raw w, h decode
    box = yolo.decode_boxes(pred[..., :10].unflatten(-1, (2, 5)), sqrt_wh=False)[0, 0, 0, 0]
    assert torch.allclose(box, torch.tensor([0.1, 0.2, 0.4, 0.4]), atol=1e-6)


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = yolo.main(["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "ablation", "history"} <= set(result)
    assert code == (0 if result["passed"] else 1)
