"""GoogLeNet runnable: on digits of random size and position the Inception network passes the
gate and the naive-module twin of equal multiply-adds fails it (seeds 0-2); Table 1's network
with the auxiliary heads apart, its parameters and multiply-adds against the record; the naive
and plain twins spend the Inception network's multiply-adds."""

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
def test_inception_passes_and_naive_modules_of_equal_multiply_adds_fail(seed):
    cfg = dataclasses.replace(R.PRESETS["tiny"], seed=seed)
    result = R.train(cfg)
    assert result["metric"] == R.GATE[0] == "accuracy" and result["seed"] == seed
    assert result["value"] >= R.GATE[2], result
    assert result["ablation"]["value"] < R.GATE[2], result
    assert "naive" in result["ablation"]["name"]
    assert result["passed"] and result["conditions"] == {}
    assert result["history"]["idea"][-1] == result["value"]
    assert result["history"]["ablation"][-1] == result["ablation"]["value"]
    assert len(result["history"]["ablation"]) == cfg.epochs
    assert result["params"] == 71_518 and result["madds"] == R.multiply_adds(cfg)
    assert abs(result["ablation_madds"] / result["madds"] - 1) <= 0.02


def test_paper_preset_is_the_network_of_table_1_with_its_parameter_count():
    cfg = R.PRESETS["paper"]
    with torch.device("meta"):
        model = R.build_model(cfg)
        logits = model(torch.empty(1, 3, 224, 224))
        logits_t, tapped = model(torch.empty(1, 3, 224, 224), taps=True)
        aux = R.build_aux(model, cfg)
    assert logits.shape == logits_t.shape == (1, 1000)
    assert [m.c_out for m in model.body if isinstance(m, R.Inception)] == [
        256,
        480,
        512,
        512,
        512,
        528,
        832,
        832,
        1024,
    ]  # 3a .. 5b
    assert [a.shape[1:] for a in tapped] == [(512, 14, 14), (528, 14, 14)]  # 4a, 4d
    # Table 1's network; the auxiliary classifiers are training-only and not in it.
    assert count(model) == 6_998_552 and count(aux) == 6_379_728
    assert abs(count(model) / figure("googlenet", "params-table1") - 1) <= 0.02


def test_paper_preset_spends_about_the_1_5_billion_multiply_adds_of_section_1():
    madds = R.multiply_adds(R.PRESETS["paper"])
    assert madds == 1_582_671_872
    assert abs(madds / figure("googlenet", "madds-budget") - 1) <= 0.06


def test_twins_spend_the_same_multiply_adds_without_1x1_reductions():
    for preset in ("tiny", "paper"):
        cfg = R.PRESETS[preset]
        for block, tol in (("naive", 0.02), ("plain", 0.01)):
            twin = dataclasses.replace(cfg, block=block)
            assert abs(R.multiply_adds(twin) / R.multiply_adds(cfg) - 1) <= tol, (preset, block)
            with torch.device("meta"):
                model = R.build_model(twin)
            assert not any(isinstance(b, R.Inception) for b in model.body)
            kernels = {
                m.kernel_size for b in model.body for m in b.modules() if isinstance(m, nn.Conv2d)
            }
            assert kernels == ({(3, 3)} if block == "plain" else {(1, 1), (3, 3), (5, 5)})


def test_naive_module_is_fig_2a_narrowed_to_the_budget_and_passes_its_input_on():
    m = R.NaiveInception(192, R.Inception(192, 64, 96, 128, 16, 32, 32).madds, 64, 128, 32)
    widths = [m.b1[0].out_channels, m.b2[0].out_channels, m.b3[0].out_channels]
    assert widths == [27, 54, 14]  # 0.42 x (64, 128, 32): Fig. 2a is 2.4x dearer
    assert m.c_out == sum(widths) + 192  # the pooled input goes on whole
    x = torch.randn(1, 192, 7, 7)
    assert torch.equal(m(x)[:, -192:], nn.functional.max_pool2d(x, 3, 1, 1))


def test_inception_module_multiply_adds_match_a_hand_count():
    m = R.Inception(192, 64, 96, 128, 16, 32, 32)  # 3a
    per_pixel = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    assert m.madds == per_pixel and m.c_out == 256


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {
        "metric",
        "value",
        "conditions",
        "history",
        "passed",
        "seed",
        "params",
        "seconds",
    } <= set(result)
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
