"""ERNIE runnable: tiny gate (whole-entity recovery), token-level masking as the contrast, corpus and masking checks."""

from dataclasses import replace

import torch
from torch import nn

from runnable import ernie as E


def test_knowledge_masking_recovers_whole_entities_and_token_masking_does_not():
    tiny = E.PRESETS["tiny"]
    assert tiny.masking == "knowledge"
    r = E.train(tiny)
    assert r["passed"], r
    assert r["value"] >= E.GATE[2]
    basic = E.train(replace(tiny, masking="token"))  # same budget, BERT's basic masking only
    assert basic["value"] < r["value"] - 0.5, (basic, r)


def test_corpus_entity_is_fixed_by_the_key_and_contiguous():
    cfg = E.PRESETS["tiny"]
    tokens, is_entity = E.make_sentences(cfg, 500, torch.Generator().manual_seed(1))
    assert (is_entity.sum(1) == cfg.entity_len).all()
    key0, ent0 = E.N_SPECIAL, E.N_SPECIAL + cfg.n_entities
    for row, ent in zip(tokens, is_entity):
        keys = row[(row >= key0) & (row < ent0)]
        assert len(keys) == 1  # exactly one key per sentence
        k = keys.item() - key0
        assert row[ent].tolist() == [ent0 + k * cfg.entity_len + j for j in range(cfg.entity_len)]


def test_entity_level_masking_masks_the_unit_together():
    cfg = E.PRESETS["tiny"]
    g = torch.Generator().manual_seed(0)
    tokens, is_entity = E.make_sentences(cfg, 4000, g)
    _, labels = E.mask_batch(cfg, tokens, is_entity, g)
    chosen = labels != -100
    whole = (chosen == is_entity).all(1)  # sentences whose prediction set is the entity
    assert abs(whole.float().mean().item() - cfg.p_entity) < 0.05
    _, labels = E.mask_batch(replace(cfg, masking="token"), tokens, is_entity, g)
    all_three = ((labels != -100) & is_entity).sum(1) == cfg.entity_len
    assert all_three.float().mean().item() < 0.01  # basic masking almost never hides a whole entity


def test_encoder_layer_equals_torch_gelu_layer():
    torch.manual_seed(0)
    ours = E.EncoderLayer(32, 4, 64, dropout=0.0).eval()
    theirs = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation="gelu", batch_first=True
    ).eval()
    with torch.no_grad():
        theirs.self_attn.in_proj_weight.copy_(
            torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight])
        )
        theirs.self_attn.in_proj_bias.copy_(
            torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias])
        )
        for a, b in [
            (ours.W_o, theirs.self_attn.out_proj),
            (ours.W_1, theirs.linear1),
            (ours.W_2, theirs.linear2),
            (ours.norm1, theirs.norm1),
            (ours.norm2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    x = torch.randn(2, 6, 32)
    assert (ours(x) - theirs(x)).abs().max() <= 1e-5


def test_paper_preset_has_bert_base_shape():
    with torch.device("meta"):
        model = E.build_model(E.PRESETS["paper"])
    assert len(model.layers) == 12 and model.tok.weight.shape == (18000, 768)
