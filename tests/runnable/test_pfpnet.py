"""PFPNet runnable: tiny gate, the paper preset's pyramid on the meta device, anchors / matching / NMS / mAP oracles."""
import importlib.util
import json
import sys
from pathlib import Path

import torch

PATH = Path(__file__).resolve().parents[2] / "runnable" / "pfpnet.py"
spec = importlib.util.spec_from_file_location("runnable_pfpnet", PATH)
pfpnet = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pfpnet
spec.loader.exec_module(pfpnet)


def test_tiny_preset_reaches_map50_gate_on_held_out_shapes():
    result = pfpnet.train(pfpnet.PRESETS["tiny"])
    assert result["metric"] == pfpnet.GATE[0] == "map50"
    assert result["passed"] and result["value"] >= pfpnet.GATE[2], result


def test_paper_preset_builds_a_4_level_parallel_pyramid_40_20_10_5_on_320x320():
    cfg = pfpnet.PRESETS["paper"]
    with torch.device("meta"):
        model = pfpnet.build_model(cfg)
        cls, box = model(torch.empty(1, 3, 320, 320))
    n_anchors = (40 ** 2 + 20 ** 2 + 10 ** 2 + 5 ** 2) * len(cfg.aspect_ratios)
    assert cls.shape == (1, n_anchors, 21) and box.shape == (1, n_anchors, 4)
    assert len(pfpnet.make_anchors(cfg)) == n_anchors
    # widened, not deepened: every level goes through the same number of layers
    assert len({len(b) for b in model.bottleneck}) == 1 and len(model.bottleneck) == cfg.N == 4


def test_anchors_follow_the_head_order_level_row_column_aspect():
    cfg = pfpnet.Config()
    anchors = pfpnet.make_anchors(cfg)
    s = 2 ** cfg.base.count("m")                                   # stride of level 0
    side = 2 * s                                                   # anchor_scale * stride
    lo, hi = s / 2 - side / 2, s / 2 + side / 2
    assert torch.allclose(anchors[0], torch.tensor([lo, lo, hi, hi]))
    A = len(cfg.aspect_ratios)
    assert torch.allclose((anchors[A] - anchors[0])[[0, 2]], torch.tensor([s, s]).float())   # next column
    assert len(anchors) == sum((cfg.image_size // (s * 2 ** n)) ** 2 for n in range(cfg.N)) * A


def test_box_encoding_round_trips():
    anchors = torch.tensor([[0.0, 0, 8, 8], [4.0, 4, 20, 12]])
    boxes = torch.tensor([[1.0, 2, 7, 11], [3.0, 5, 25, 9]])
    assert (pfpnet.decode(pfpnet.encode(boxes, anchors), anchors) - boxes).abs().max() <= 1e-5


def test_matching_gives_each_ground_truth_its_best_anchor_and_background_elsewhere():
    anchors = torch.tensor([[0.0, 0, 8, 8], [8.0, 8, 16, 16], [0.0, 0, 16, 16], [30.0, 30, 40, 40]])
    boxes, labels = torch.tensor([[1.0, 1, 7, 7], [26.0, 26, 36, 36]]), torch.tensor([2, 0])
    t_cls, t_box = pfpnet.match(boxes, labels, anchors)
    # box 0: IoU 36/64 with anchor 0 -> class 2 + 1; box 1: IoU 36/164 < 0.5, but it still takes its best anchor
    assert t_cls.tolist() == [3, 0, 0, 1]


def test_iou_nms_and_map_on_hand_made_cases():
    a, b = torch.tensor([0.0, 0.0, 2.0, 2.0]), torch.tensor([1.0, 1.0, 3.0, 3.0])
    assert abs(pfpnet.box_iou(a, b).item() - 1 / 7) < 1e-6
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30.0]])
    assert pfpnet.nms(boxes, torch.tensor([0.8, 0.9, 0.7]), 0.5).tolist() == [1, 2]
    gts = [(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0]))]
    dets = [(torch.tensor([[0.0, 0, 10, 10], [50.0, 50, 60, 60]]), torch.tensor([0.5, 0.9]), torch.tensor([0, 0]))]
    assert abs(pfpnet.mean_average_precision(dets, gts, 1) - 0.5) < 1e-6   # false positive ranked first


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = pfpnet.main(["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)
