"""NIN runnable: tiny gate, mlpconv + global average pooling with no fully connected layer."""
import json

import torch
from torch import nn

from runnable import nin as R


def test_tiny_reaches_gate_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_is_three_mlpconv_blocks_then_global_average_pooling():
    # The paper states no parameter count, so there is no figure to compare; we pin our count.
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        out = model(torch.empty(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())            # no FC layers
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [5, 1, 1, 5, 1, 1, 3, 1, 1]        # 1x1 = mlpconv
    assert sum(p.numel() for p in model.parameters()) == 966_986


def test_global_average_pooling_equals_adaptive_avg_pool():
    model = R.build_model(R.PRESETS["tiny"]).eval()
    x = torch.randn(3, 1, 16, 16)
    ref = nn.AdaptiveAvgPool2d(1)(model.mlpconvs(x)).flatten(1)
    assert (model(x) - ref).abs().max() <= 1e-5


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    loss = nn.functional.cross_entropy(model(torch.randn(2, 1, cfg.image_size, cfg.image_size)),
                                       torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss)
