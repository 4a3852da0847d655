"""Paragraph Vector: topic gate on inferred vectors, the paper preset on meta, inference freezes W, U, b."""
from dataclasses import replace

import torch

from runnable import paragraph2vec as pv
from tests.conftest import figure


def test_tiny_gate_on_inferred_vectors():
    r = pv.train(pv.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= pv.GATE[2], r


def test_paper_preset_on_meta():
    cfg = pv.PRESETS["paper"]
    assert cfg.p == cfg.q == figure("paragraph2vec", "vector-dim")
    with torch.device("meta"):
        model = pv.build_model(cfg)
        logits = model.models["dm"](torch.zeros(2, dtype=torch.long), torch.zeros(2, 2 * cfg.k, dtype=torch.long))
    assert model.vectors().shape == (cfg.n_train, 2 * 400)      # PV-DM and PV-DBOW concatenated (§3)
    assert logits.shape == (2, cfg.vocab)
    assert model.models["dm"].U.in_features == 400 + 10 * 400     # d_i concatenated with 10 context words


def test_inference_step_moves_only_the_new_paragraph_vectors():
    cfg = replace(pv.PRESETS["tiny"], steps=0, infer_steps=5, batch_size=16)
    g = torch.Generator().manual_seed(0)
    docs, _ = pv.make_docs(cfg, 10, g)
    model = pv.ParagraphVector(cfg, 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [m.D.weight for m in model.models.values()]
    amp = dict(device_type="cuda", enabled=False)
    pv.fit_paragraphs(model, docs, cfg, cfg.infer_steps, params, g, "cpu", amp)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]) != k.endswith("D.weight"), k
