"""FPN runnable: tiny recall gate, FPN vs a single top-level map on small objects, nearest 2x upsampling oracle."""

import dataclasses
import json

import torch
import torch.nn.functional as F

from runnable import fpn as R


def test_tiny_preset_reaches_recall_gate_and_beats_the_single_top_map_on_small_objects():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "recall-at-10"
    assert result["passed"] and result["value"] >= R.GATE[2], result
    # Table 1 (b) vs (c): the same backbone and budget with one C5-based map and all anchor sizes there.
    top = R.train(dataclasses.replace(R.PRESETS["tiny"], mode="top"))
    assert result["recall_small"] >= top["recall_small"] + 0.3, (result, top)
    assert result["value"] >= top["value"] + 0.25, (result, top)


def test_nearest_2x_upsampling_equals_f_interpolate():
    x = torch.randn(2, 3, 5, 7)
    ref = F.interpolate(x, scale_factor=2, mode="nearest")
    assert (R.upsample2x(x) - ref).abs().max() <= 1e-5


def test_top_down_pathway_is_upsample_plus_lateral_then_3x3_smoothing():
    torch.manual_seed(0)
    model = R.build_model(R.PRESETS["tiny"]).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        C, h = [], model.stem(x)
        for stage in model.stages:
            h = stage(h)
            C.append(h)
        M5 = model.lateral[3](C[3])
        M4 = F.interpolate(M5, scale_factor=2, mode="nearest") + model.lateral[2](C[2])
        P = model.pyramid(x)
    assert [p.shape[-1] for p in P] == [32, 16, 8, 4] and all(p.shape[1] == 16 for p in P)
    assert (P[3] - model.smooth[3](M5)).abs().max() <= 1e-5
    assert (P[2] - model.smooth[2](M4)).abs().max() <= 1e-5


def test_anchors_match_the_heads_outputs_one_size_per_level():
    cfg = R.PRESETS["tiny"]
    model = R.build_model(cfg)
    cls, reg = model(torch.randn(2, 3, cfg.image_size, cfg.image_size))
    anchors = R.make_anchors(cfg)
    assert cls.shape[1] == reg.shape[1] == len(anchors) == 3 * (32**2 + 16**2 + 8**2 + 4**2)
    sides = (anchors[:, 2:] - anchors[:, :2]).prod(-1).sqrt().round().unique().tolist()
    assert sides == [8.0, 16.0, 32.0, 64.0]  # anchor_scale x stride, one per level


def test_paper_preset_has_four_256_channel_levels_at_strides_4_to_32():
    cfg = R.PRESETS["paper"]
    with torch.device("meta"):
        model = R.build_model(cfg)
        P = model.pyramid(torch.empty(1, 3, 800, 800))
    assert [tuple(p.shape[1:]) for p in P] == [
        (256, 200, 200),
        (256, 100, 100),
        (256, 50, 50),
        (256, 25, 25),
    ]


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--n_train=32", "--n_test=8", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s"} <= set(result)
    assert code == (0 if result["passed"] else 1)
