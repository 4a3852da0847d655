"""Faster R-CNN runnable: tiny mAP gate and RPN recall, box coding, anchors, paper preset shapes.
RoI pooling, NMS and AP are the shared helpers of runnable/_boxes.py, tested in test_boxes.py."""

import json

import pytest
import torch

from tests.conftest import runnable

R = runnable("faster-rcnn")


@pytest.fixture(scope="module")
def tiny():
    return R.train(R.PRESETS["tiny"])


def test_tiny_preset_reaches_map50_gate_on_held_out_shapes(tiny):
    assert tiny["metric"] == R.GATE[0] == "map50"
    assert tiny["passed"] and tiny["value"] >= R.GATE[2], tiny


def test_rpn_proposals_recall_most_held_out_objects(tiny):
    assert tiny["rpn_recall"] >= 0.9, tiny  # recall@IoU 0.5 of the post-NMS proposals


def test_box_encoding_round_trips_and_matches_eq_2():
    g = torch.Generator().manual_seed(0)
    anchors = torch.tensor([[0.0, 0.0, 8.0, 16.0], [10.0, 4.0, 30.0, 14.0]])
    boxes = anchors + torch.randn(2, 4, generator=g)
    t = R.encode(boxes, anchors)
    assert torch.allclose(R.decode(t, anchors), boxes, atol=1e-5)
    w_a, x_a, w = 8.0, 4.0, boxes[0, 2] - boxes[0, 0]
    assert torch.isclose(
        t[0, 0], ((boxes[0, 0] + boxes[0, 2]) / 2 - x_a) / w_a
    )  # t_x = (x - x_a) / w_a
    assert torch.isclose(t[0, 2], torch.log(w / w_a))  # t_w = log(w / w_a)


def test_anchors_are_3_scales_by_3_ratios_at_every_position():
    cfg = R.PRESETS["tiny"]
    anchors = R.make_anchors(cfg)
    assert anchors.shape == ((cfg.image_size // 4) ** 2 * 9, 4)
    wh = anchors[:9, 2:] - anchors[:9, :2]
    assert torch.allclose(
        wh.prod(-1).sqrt(), torch.tensor(cfg.scales).repeat_interleave(3)
    )  # area = scale^2
    assert torch.allclose((wh[:, 1] / wh[:, 0]), torch.tensor(cfg.ratios).repeat(3))


def test_paper_preset_is_vgg16_with_a_512d_rpn_and_7x7_roi_pooling():
    cfg = R.PRESETS["paper"]
    with torch.device("meta"):
        model = R.build_model(cfg)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.backbone) == 13
    assert model.rpn_conv.out_channels == 512 and model.rpn_cls.out_channels == 2 * 9
    assert model.fc[1].in_features == 512 * 7 * 7 and model.cls_score.out_features == 21


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--n_train=64", "--n_test=16", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s", "rpn_recall"} <= set(
        result
    )
    assert code == (0 if result["passed"] else 1)
