"""Quick-thought runnable: next-sentence selection gate far above chance, the score is f(s) . g(c), the
loss is a softmax over the batch's candidates, and f, g are separate encoders."""

import math

import torch

from tests.conftest import runnable

qt = runnable("quick-thought")


def test_tiny_gate_picks_the_next_sentence():
    r = qt.train(qt.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= qt.GATE[2], r
    assert r["value"] >= 4 * r["chance"], r


def test_untrained_model_is_near_chance():
    torch.manual_seed(0)
    cfg = qt.PRESETS["tiny"]
    g = torch.Generator().manual_seed(1)
    stories, _ = qt.make_stories(cfg, 800, g)
    acc = qt.selection_accuracy(qt.build_model(cfg).eval(), stories, cfg.K, g, "cpu")
    assert acc < 0.35


def test_score_is_inner_product_of_two_encoders_and_loss_is_batch_softmax():
    torch.manual_seed(0)
    cfg = qt.PRESETS["tiny"]
    model = qt.build_model(cfg).eval()
    assert model.f is not model.g and not torch.equal(
        model.f.gru.weight_hh_l0, model.g.gru.weight_hh_l0
    )
    words, _ = qt.make_stories(cfg, 5, torch.Generator().manual_seed(0))
    s, c = words[:, 0], words[:, 1]
    with torch.no_grad():
        u, v = model.f(s), model.g(c)
        scores = model.scores(s, c)
        assert torch.allclose(scores[2, 3], (u[2] * v[3]).sum(), atol=1e-5)
        p = torch.softmax(scores, -1)
        expected = -torch.log(p.diagonal()).mean()
        assert math.isclose(model(s, c).item(), expected.item(), rel_tol=1e-5)
        assert model.embed_sentences(s).shape == (5, 2 * cfg.d_hid)


def test_paper_preset_on_meta():
    with torch.device("meta"):
        model = qt.build_model(qt.PRESETS["paper"])
        out = model.embed_sentences(torch.zeros(2, 7, dtype=torch.long))
    assert out.shape == (2, 4800)
