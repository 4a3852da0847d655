"""GoogLeNet runnable: tiny gate on digits of random size and position (seeds 0-2); Table 1's
network with the auxiliary heads apart, its parameters and multiply-adds against the record; the
plain twin of equal multiply-adds."""
import dataclasses
import json

import pytest
import torch
from torch import nn

from runnable import googlenet as R
from tests.conftest import figure


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_reaches_the_gate_on_digits_of_random_size_and_position(seed):
    # No contrast yet: the plain twin of equal multiply-adds scores within a few points (see
    # train()'s docstring), so this gate shows learning, not the Inception module's advantage.
    cfg = dataclasses.replace(R.PRESETS["tiny"], seed=seed)
    result = R.train(cfg)
    assert result["metric"] == R.GATE[0] == "accuracy" and result["seed"] == seed
    assert result["value"] >= R.GATE[2] and result["passed"], result
    assert result["history"]["idea"][-1] == result["value"]
    assert result["params"] == 71_518 and result["madds"] == R.multiply_adds(cfg)


def test_paper_preset_is_the_network_of_table_1_with_its_parameter_count():
    cfg = R.PRESETS["paper"]
    with torch.device("meta"):
        model = R.build_model(cfg)
        logits = model(torch.empty(1, 3, 224, 224))
        logits_t, tapped = model(torch.empty(1, 3, 224, 224), taps=True)
        aux = R.build_aux(model, cfg)
    assert logits.shape == logits_t.shape == (1, 1000)
    assert [m.c_out for m in model.body if isinstance(m, R.Inception)] == [
        256, 480, 512, 512, 512, 528, 832, 832, 1024]                                   # 3a .. 5b
    assert [a.shape[1:] for a in tapped] == [(512, 14, 14), (528, 14, 14)]            # 4a, 4d
    # Table 1's network; the auxiliary classifiers are training-only and not in it.
    assert count(model) == 6_998_552 and count(aux) == 6_379_728
    assert abs(count(model) / figure("googlenet", "params-table1") - 1) <= 0.02


def test_paper_preset_spends_about_the_1_5_billion_multiply_adds_of_section_1():
    madds = R.multiply_adds(R.PRESETS["paper"])
    assert madds == 1_582_671_872
    assert abs(madds / figure("googlenet", "madds-budget") - 1) <= 0.06


def test_plain_twin_spends_the_same_multiply_adds_on_3x3_convolutions_alone():
    for preset in ("tiny", "paper"):
        cfg = R.PRESETS[preset]
        plain = dataclasses.replace(cfg, block="plain")
        assert abs(R.multiply_adds(plain) / R.multiply_adds(cfg) - 1) <= 0.01
        with torch.device("meta"):
            model = R.build_model(plain)
        kernels = {m.kernel_size for b in model.body for m in b.modules()
                   if isinstance(m, nn.Conv2d)}
        assert kernels == {(3, 3)} and not any(isinstance(b, R.Inception) for b in model.body)


def test_inception_module_multiply_adds_match_a_hand_count():
    m = R.Inception(192, 64, 96, 128, 16, 32, 32)                                      # 3a
    per_pixel = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    assert m.madds == per_pixel and m.c_out == 256


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "conditions", "history", "passed", "seed", "params",
            "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    aux = R.build_aux(model, cfg)
    logits, tapped = model(torch.randn(2, 1, cfg.image_size, cfg.image_size), taps=True)
    z = [logits, *(head(a) for head, a in zip(aux, tapped))]
    loss = sum(nn.functional.cross_entropy(v, torch.tensor([0, 1])) for v in z)
    loss.backward()
    assert torch.isfinite(loss)
