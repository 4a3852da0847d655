"""Paragraph Vector: inferred vectors classify held-out paragraphs written with other words of the
same topics and bag-of-words fails (seeds 0-2), the paper preset on meta, the inference step
leaves W, U and b exactly as trained while the new paragraph vectors move."""

from dataclasses import replace

import pytest
import torch

from runnable import paragraph2vec as pv
from tests.conftest import figure

NO_AMP = dict(device_type="cuda", enabled=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_paragraph_vectors_pass_the_gate_bag_of_words_fails(seed):
    r = pv.train(replace(pv.PRESETS["tiny"], seed=seed))
    assert r["metric"] == pv.GATE[0] and r["seed"] == seed
    assert r["ablation"]["name"] == "bag of words" and r["conditions"] == {}
    assert r["value"] >= pv.GATE[2] > r["ablation"]["value"] and r["passed"], r
    history = r["history"]
    assert len(history["idea"]) == len(history["ablation"]) == pv.PRESETS["tiny"].evals
    assert history["idea"][-1] == r["value"]


def test_labelled_and_held_out_paragraphs_use_disjoint_halves_of_each_topic():
    cfg = replace(pv.PRESETS["tiny"], topic_share=1.0)  # topic words only
    g = torch.Generator().manual_seed(0)
    language = pv.make_language(cfg, g)
    labelled, y = pv.make_docs(cfg, language, 200, 0, g)
    test, z = pv.make_docs(cfg, language, 200, 1, g)
    both, _ = pv.make_docs(cfg, language, 200, None, g)
    h = cfg.words_per_topic // 2
    first, second = language[1][:, :h], language[1][:, h:]  # (K, h) each
    assert (labelled[:, :, None] == first[y][:, None]).any(-1).all()  # own topic, first half
    assert (test[:, :, None] == second[z][:, None]).any(-1).all()
    words = set(both.flatten().tolist())
    assert set(first.flatten().tolist()) <= words and set(second.flatten().tolist()) <= words


def test_classifier_gives_a_feature_never_seen_in_training_no_weight():
    X_tr, y = torch.randn(40, 5), torch.arange(40) % 2
    X_tr[:, 4] = 0.0
    X_te = torch.randn(30, 5)
    changed = X_te.clone()
    changed[:, 4] += 100.0
    assert torch.equal(pv.classify(X_tr, y, X_te, 2), pv.classify(X_tr, y, changed, 2))


def test_paper_preset_on_meta():
    cfg = pv.PRESETS["paper"]
    assert cfg.p == cfg.q == figure("paragraph2vec", "vector-dim")
    with torch.device("meta"):
        model = pv.build_model(cfg)
        context = torch.zeros(2, 2 * cfg.k, dtype=torch.long)
        logits = model.models["dm"](torch.zeros(2, dtype=torch.long), context)
    assert model.vectors().shape == (cfg.n_unlabelled, 2 * 400)  # PV-DM and PV-DBOW joined (§3)
    assert logits.shape == (2, cfg.vocab)
    assert model.models["dm"].U.in_features == 400 + 10 * 400  # d_i and 10 context words


def test_inference_leaves_word_vectors_and_softmax_as_trained_and_moves_the_new_vectors():
    cfg = replace(pv.PRESETS["tiny"], n_unlabelled=30, infer_steps=20, batch_size=64)
    g = torch.Generator().manual_seed(0)
    language = pv.make_language(cfg, g)
    docs, _ = pv.make_docs(cfg, language, cfg.n_unlabelled, None, g)
    new_docs, _ = pv.make_docs(cfg, language, 10, 1, g)
    torch.manual_seed(0)
    model = pv.build_model(cfg)
    untrained = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    pv.fit_paragraphs(model, docs, cfg, 20, opt, g, "cpu", NO_AMP)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(not torch.equal(trained[k], untrained[k]) for k in trained)  # training moved all
    torch.manual_seed(1)
    start = pv.ParagraphVector(cfg, 10).vectors().detach()  # the draw infer() starts from
    torch.manual_seed(1)
    new = pv.infer(model, new_docs, cfg, g, "cpu", NO_AMP)
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained[k]), k  # the trained model is untouched
    for k, v in new.state_dict().items():
        if not k.endswith("D.weight"):
            assert torch.equal(v, trained[k]), k  # W, U, b: bitwise as trained
    moved = (new.vectors().detach() - start).abs().amax(1)
    assert (moved > 1e-3).all()  # every new paragraph moved
