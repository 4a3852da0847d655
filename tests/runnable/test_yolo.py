"""YOLO v1 runnable: tiny gate, the paper's 7x7x30 output on the meta device, IoU / NMS / mAP / eq. 3 oracles."""
import importlib.util
import json
import sys
from pathlib import Path

import torch

PATH = Path(__file__).resolve().parents[2] / "runnable" / "yolo.py"
spec = importlib.util.spec_from_file_location("runnable_yolo", PATH)
yolo = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = yolo
spec.loader.exec_module(yolo)


def test_tiny_preset_reaches_map50_gate_on_held_out_shapes():
    result = yolo.train(yolo.PRESETS["tiny"])
    assert result["metric"] == yolo.GATE[0] == "map50"
    assert result["passed"] and result["value"] >= yolo.GATE[2], result


def test_paper_preset_has_24_convs_2_fcs_and_outputs_7x7x30_from_448x448():
    with torch.device("meta"):
        model = yolo.build_model(yolo.PRESETS["paper"])
        out = model(torch.empty(1, 3, 448, 448))
    assert out.shape == (1, 7, 7, 30)                              # S x S x (B * 5 + C), sec. 2
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 24
    assert [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)] == [4096, 1470]


def test_iou_of_two_hand_checked_boxes():
    a, b = torch.tensor([0.0, 0.0, 2.0, 2.0]), torch.tensor([1.0, 1.0, 3.0, 3.0])
    assert abs(yolo.box_iou(a, b).item() - 1 / 7) < 1e-6          # overlap 1, union 4 + 4 - 1
    assert yolo.box_iou(a, torch.tensor([2.0, 0.0, 3.0, 1.0])).item() == 0.0   # touching edges
    assert abs(yolo.box_iou(a, a).item() - 1) < 1e-6


def test_nms_keeps_the_best_box_of_an_overlapping_pair_and_a_separate_box():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.8, 0.9, 0.7, 0.6])
    # box 1 wins; box 0 overlaps it by 81/119 = 0.68 > 0.5 and box 3 by 72/118 = 0.61; box 2 is apart
    assert yolo.nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert yolo.nms(boxes, scores, 0.7).tolist() == [1, 0, 2]     # box 3 vs box 0: IoU 0.9 > 0.7


def test_map_of_a_hand_checked_ranking():
    gts = [(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0])), (torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0]))]
    dets = [(torch.tensor([[0.0, 0, 10, 10], [50.0, 50, 60, 60]]), torch.tensor([0.9, 0.8]), torch.tensor([0, 0])),
            (torch.tensor([[1.0, 0, 10, 10]]), torch.tensor([0.7]), torch.tensor([0]))]
    # ranked: hit (P 1, R 0.5), miss, hit (P 2/3, R 1) -> AP = 0.5 * 1 + 0.5 * 2/3
    assert abs(yolo.mean_average_precision(dets, gts, 1) - (0.5 + 1 / 3)) < 1e-6


def test_eq3_loss_is_zero_for_a_perfect_prediction_and_weights_noobj_by_half():
    cfg = yolo.Config(S=2, B=2, C=3)
    boxes, labels = [torch.tensor([[0.1, 0.2, 0.4, 0.4]])], [torch.tensor([2])]
    obj, target = yolo.encode_targets(cfg, boxes, labels)
    pred = torch.zeros(1, 2, 2, 13)
    pred[0, 0, 0, 0:2] = target[0, 0, 0, :2]                       # x, y offsets in cell (0, 0)
    pred[0, 0, 0, 2:4] = target[0, 0, 0, 2:4].sqrt()               # sqrt(w), sqrt(h)
    pred[0, 0, 0, 4] = 1.0                                         # confidence = IoU = 1
    pred[0, 0, 0, 10:] = torch.tensor([0.0, 0.0, 1.0])             # class probabilities
    assert yolo.yolo_loss(pred, obj, target, cfg).item() < 1e-10
    pred[0, 1, 1, 9] = 1.0                                         # a wrong confidence in an empty cell
    assert abs(yolo.yolo_loss(pred, obj, target, cfg).item() - cfg.lambda_noobj) < 1e-6


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = yolo.main(["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)
