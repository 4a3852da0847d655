"""Adaptive softmax runnable: tiny perplexity gate against the unigram baseline, and our adaptive softmax
against torch.nn.AdaptiveLogSoftmaxWithLoss (log-probs and loss, weights copied, fp32)."""

import torch
from torch import nn

from tests.conftest import runnable

ada = runnable("adaptive-softmax")


def test_tiny_perplexity_gate_well_below_unigram():
    result = ada.train(ada.PRESETS["tiny"])
    assert result["passed"] and result["value"] <= ada.GATE[2], result
    assert result["value"] < 0.5 * result["unigram_perplexity"]  # the Markov structure was learned
    assert result["speedup_vs_full_softmax"] > 0 and result["tokens_per_s"] > 0


def oracle(ours: "ada.AdaptiveSoftmax", d, V, cutoffs):
    theirs = nn.AdaptiveLogSoftmaxWithLoss(d, V, list(cutoffs), div_value=4.0, head_bias=False)
    with torch.no_grad():
        theirs.head.weight.copy_(ours.head.weight)
        for a, b in zip(ours.tail, theirs.tail):
            b[0].weight.copy_(a[0].weight), b[1].weight.copy_(a[1].weight)
    return theirs


def test_equals_torch_adaptive_log_softmax():
    torch.manual_seed(0)
    d, V, cutoffs = 64, 300, (20, 80, 200)
    ours = ada.AdaptiveSoftmax(d, V, cutoffs)
    theirs = oracle(ours, d, V, cutoffs)
    assert [t[0].out_features for t in ours.tail] == [16, 4, 1]  # d / 4^i
    h = torch.randn(64, d)
    target = torch.cat(
        [torch.randint(0, 20, (20,)), torch.randint(20, 300, (44,))]
    )  # head and every tail
    assert (ours.log_prob(h) - theirs.log_prob(h)).abs().max() <= 1e-5
    out, loss = ours(h, target)
    ref = theirs(h, target)
    assert (out - ref.output).abs().max() <= 1e-5 and abs(loss.item() - ref.loss.item()) <= 1e-5
    assert torch.allclose(
        ours.log_prob(h).exp().sum(-1), torch.ones(64), atol=1e-5
    )  # a distribution


def test_gradients_equal_torch():
    torch.manual_seed(1)
    d, V, cutoffs = 16, 100, (10, 40)
    ours = ada.AdaptiveSoftmax(d, V, cutoffs)
    theirs = oracle(ours, d, V, cutoffs)
    h, target = torch.randn(30, d), torch.randint(0, V, (30,))
    ours(h, target)[1].backward()
    theirs(h, target).loss.backward()
    assert (ours.head.weight.grad - theirs.head.weight.grad).abs().max() <= 1e-5
    assert (ours.tail[1][1].weight.grad - theirs.tail[1][1].weight.grad).abs().max() <= 1e-5


def test_paper_preset_on_meta():
    cfg = ada.PRESETS["paper"]
    with torch.device("meta"):
        model = ada.build_model(cfg)
    sm = model.softmax
    assert sm.head.out_features == 8000 + 3  # shortlist + one token per tail cluster
    assert [t[0].out_features for t in sm.tail] == [128, 32, 8]  # d / 4, d / 16, d / 64
    assert sum(t[1].out_features for t in sm.tail) + 8000 == 793_471
