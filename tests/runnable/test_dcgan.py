"""DCGAN runnable: tiny classifier-score gate vs an untrained generator, the sec. 3 architecture, the score itself."""

import dataclasses
import json

import torch
from torch import nn

from runnable import dcgan as R


def test_tiny_generator_makes_confident_and_varied_digits_and_an_untrained_one_does_not():
    result = R.train(R.PRESETS["tiny"])
    assert result["metric"] == R.GATE[0] == "classifier-score"
    assert result["passed"] and result["value"] >= R.GATE[2], result
    assert result["judge_accuracy"] >= 0.93 and result["real_score"] >= 8.0, (
        result
    )  # the judge is sound
    untrained = R.train(dataclasses.replace(R.PRESETS["tiny"], steps=0))
    assert untrained["value"] < 2.5 and not untrained["passed"], untrained


def test_classifier_score_is_10_for_confident_even_classes_and_1_for_one_class():
    x = torch.zeros(20, 1, 8, 8)

    def judge(logits):
        return lambda _: logits

    confident = torch.eye(10).repeat(2, 1) * 50  # each class twice, p(y|x) one-hot
    assert abs(R.classifier_score(judge(confident), x) - 10) < 1e-3
    assert abs(R.classifier_score(judge(confident[:1].repeat(20, 1)), x) - 1) < 1e-3


def test_paper_preset_is_the_64x64_lsun_architecture_of_figure_1():
    cfg = R.PRESETS["paper"]
    with torch.device("meta"):
        model = R.build_model(cfg)
        out = model.G(torch.empty(4, 100))
        logit = model.D(out)
    assert out.shape == (4, 3, 64, 64) and logit.shape == (4,)
    assert model.G.project.out_features == 4 * 4 * 1024
    convT = [m for m in model.G.net if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convT] == [512, 256, 128, 3] and all(
        m.stride == (2, 2) for m in convT
    )
    assert not any(
        isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in model.modules()
    )  # strided convs only
    assert isinstance(model.D.net[1], nn.LeakyReLU)  # no batchnorm on D's input layer
    assert isinstance(model.G.net[-1], nn.Tanh)  # tanh output, no batchnorm there


def test_generator_output_is_in_minus_one_one_and_digits_are_scaled_the_same():
    cfg = R.PRESETS["tiny"]
    x_tr, _, _, _ = R.load_digits_split(cfg)
    assert x_tr.min() >= -1 and x_tr.max() <= 1 and x_tr.shape[1:] == (1, 16, 16)
    fake = R.generate(R.build_model(cfg).G, cfg, 16)
    assert fake.shape == (16, 1, 16, 16) and fake.abs().max() <= 1


def test_main_prints_the_json_result_and_exit_code_follows_passed(capsys):
    code = R.main(["--preset", "tiny", "--json", "--steps=5"])
    result = json.loads(capsys.readouterr().out)
    assert {"metric", "value", "passed", "params", "seconds", "images_per_s"} <= set(result)
    assert code == (0 if result["passed"] else 1)
