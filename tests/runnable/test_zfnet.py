"""ZFNet runnable: tiny gate, Fig. 3's layer sizes, unpooling with switches against nn.MaxUnpool2d,
and the deconvnet projection staying inside the chosen unit's receptive field."""

import json

import torch
from torch import nn

from runnable import zfnet as R


def test_tiny_reaches_gate_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_has_the_map_sizes_of_figure_3():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        x = torch.empty(1, 3, 224, 224)
        h, [(a1, s1), (a2, s2)] = model.layer2(x)
        assert model(x).shape == (1, 1000)
    assert a1.shape[1:] == (96, 110, 110) and s1.shape[1:] == (96, 55, 55)
    assert a2.shape[1:] == (256, 26, 26) and h.shape[1:] == (256, 13, 13)
    assert model.fc6.in_features == 256 * 6 * 6
    # Not stated in the paper: 62,357,608 (AlexNet's 60.97M with 7x7 conv1 and dense conv3-5).
    assert sum(p.numel() for p in model.parameters()) == 62_357_608


def test_unpooling_with_switches_equals_torch_max_unpool():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 13, 13)
    y, switches = R.SwitchPool(3, 2)(x)  # (2, 4, 6, 6) with ceil_mode
    ours = R.unpool(y, switches, x.shape[-2:])
    theirs = nn.MaxUnpool2d(3, 2)(y, switches, output_size=x.shape[-2:])
    assert (ours - theirs).abs().max() <= 1e-6
    kept = ours != 0  # each maximum is back where it was
    assert torch.equal(ours[kept], x[kept])


def test_deconvnet_projection_stays_in_the_receptive_field_of_the_unit():
    torch.manual_seed(0)
    cfg = R.PRESETS["tiny"]
    model = R.build_model(cfg).eval()
    x = torch.randn(1, 1, cfg.image_size, cfg.image_size)
    _, [_, (a2, _)] = model.layer2(x)
    i, j = divmod(a2[0, 3].argmax().item(), a2.shape[-1])
    r = R.deconvnet(model, x, channel=3)[0, 0]
    assert r.shape == x.shape[-2:] and r.abs().sum() > 0
    # conv2 (5x5, pad 2) sees pooled rows i-2..i+2; pool 3/2 -> conv1 rows 2r..2r+2; conv1 7x7/2, pad 1
    lo = lambda k: 4 * k - 9
    rows, cols = (r != 0).nonzero().T
    assert (
        rows.min() >= lo(i)
        and rows.max() <= lo(i) + 26
        and cols.min() >= lo(j)
        and cols.max() <= lo(j) + 26
    )


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    loss = nn.functional.cross_entropy(
        model(torch.randn(2, 1, cfg.image_size, cfg.image_size)), torch.tensor([0, 1])
    )
    loss.backward()
    assert torch.isfinite(loss)
