"""ELMo: downstream gate (and above context-free vectors), biLM directions, scalar mix, paper preset on meta."""

from dataclasses import replace

import pytest
import torch

from runnable import elmo
from tests.conftest import figure


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_elmo_tells_the_sense_and_context_free_vectors_cannot(seed):
    r = elmo.train(replace(elmo.PRESETS["tiny"], seed=seed))
    gate = lambda v: v >= elmo.GATE[2]
    assert gate(r["value"]) and not gate(r["ablation"]["value"]) and r["passed"], r
    assert r["ablation"]["value"] <= 0.65, r  # x_k alone is near chance (0.5)
    assert r["seed"] == seed and r["history"]["idea"][-1] == r["value"]
    assert abs(sum(r["s"]) - 1) < 1e-5


def test_forward_lm_sees_only_the_past_and_backward_lm_only_the_future():
    torch.manual_seed(0)
    cfg = elmo.PRESETS["tiny"]
    model = elmo.build_model(cfg).eval()
    x = torch.randint(elmo.vocab_size(cfg), (2, 10))
    y = x.clone()
    y[:, 6] = (y[:, 6] + 1) % elmo.vocab_size(cfg)
    with torch.no_grad():
        for a, b in zip(model.layers(x)[1:], model.layers(y)[1:]):
            fa, ba, fb, bb = a[..., : cfg.d], a[..., cfg.d :], b[..., : cfg.d], b[..., cfg.d :]
            assert torch.equal(fa[:, :6], fb[:, :6]) and not torch.allclose(fa[:, 6:], fb[:, 6:])
            assert torch.equal(ba[:, 7:], bb[:, 7:]) and not torch.allclose(ba[:, :7], bb[:, :7])


def test_scalar_mix_is_a_softmax_weighted_sum():
    mix = elmo.ScalarMix(3)
    with torch.no_grad():
        mix.w.copy_(torch.tensor([0.5, -1.0, 2.0]))
        mix.gamma.fill_(1.7)
    R = torch.randn(3, 5, 8)
    s = torch.exp(mix.w) / torch.exp(mix.w).sum()
    assert torch.allclose(mix(R), 1.7 * (s[0] * R[0] + s[1] * R[1] + s[2] * R[2]), atol=1e-6)


def test_paper_preset_on_meta():
    cfg = elmo.PRESETS["paper"]
    assert cfg.L == figure("elmo", "bilm-layers")
    with torch.device("meta"):
        model = elmo.build_model(cfg)
        R = model.layers(torch.zeros(2, 9, dtype=torch.long))
    assert len(R) == cfg.L + 1 and all(h.shape == (2, 9, 2 * 512) for h in R)
    assert model.fwd[0].hidden_size == 4096 and model.fwd[0].proj_size == 512
    assert model.softmax.out_features == 793_471
