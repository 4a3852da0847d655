"""GoogLeNet runnable: tiny gate (with an auxiliary classifier), Table 1 shapes and parameters."""
import json

import pytest
import torch
from torch import nn

from runnable import googlenet as R
from tests.conftest import ROOT, figure, record


def count(model, aux: bool) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if aux or not n.startswith("aux."))


def test_tiny_reaches_gate_on_held_out_digits():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= R.GATE[2], result


def test_paper_preset_follows_table_1():
    with torch.device("meta"):
        model = R.build_model(R.PRESETS["paper"])
        logits, aux = model(torch.empty(1, 3, 224, 224))
    assert logits.shape == (1, 1000) and [a.shape for a in aux] == [(1, 1000)] * 2   # on 4a, 4d
    assert [m.c_out for m in model.body if isinstance(m, R.Inception)] == [
        256, 480, 512, 512, 512, 528, 832, 832, 1024]                                   # 3a .. 5b
    # Inference network (auxiliary heads are discarded): 6,998,552 with biases. Table 1's column
    # sums to about 6.8M; the paper states no total, so a record figure is optional.
    assert count(model, aux=False) == 6_998_552 and count(model, aux=True) == 13_378_280


def test_auxiliary_heads_run_only_in_training():
    model = R.build_model(R.PRESETS["tiny"])
    x = torch.randn(2, 1, 16, 16)
    logits, aux = model.train()(x)
    assert len(aux) == 1 and aux[0].shape == logits.shape == (2, 10)
    assert model.eval()(x).shape == (2, 10)


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--epochs=1"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds"} <= set(result)
    assert code == (0 if result["passed"] else 1)


def test_gpu_preset_takes_one_step_on_cpu():
    cfg = R.PRESETS["gpu"]
    model = R.build_model(cfg)
    logits, aux = model(torch.randn(2, 1, cfg.image_size, cfg.image_size))
    loss = sum(nn.functional.cross_entropy(z, torch.tensor([0, 1])) for z in [logits, *aux])
    loss.backward()
    assert torch.isfinite(loss)
