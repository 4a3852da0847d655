"""GPT runnable: pre-training pays off when labels are few, causal attention and the post-LN block against
torch's own modules, and the paper preset's shape (the paper states layers and width, not a total)."""

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from runnable import gpt as G
from tests.conftest import figure


def test_tiny_pretrained_model_beats_the_same_fine_tuning_from_scratch():
    r = G.train(G.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= G.GATE[2], r
    assert r["tokens_per_s"] > 0 and r["params"] == 106_370
    scratch = G.train(
        replace(G.PRESETS["tiny"], steps=0)
    )  # same labels, same fine-tuning, no pre-training
    assert r["value"] - scratch["value"] >= 0.05, (r["value"], scratch["value"])
    assert r["lm_val_loss"] < scratch["lm_val_loss"] - 1.0  # pre-training did learn the language


def test_paper_preset_has_the_stated_shape():
    cfg = G.PRESETS["paper"]
    assert cfg.n_layer == figure("gpt", "layers") and cfg.d_model == figure("gpt", "d-model")
    assert (cfg.n_head, cfg.d_ff, cfg.vocab, cfg.n_ctx, cfg.lam) == (12, 3072, 40478, 512, 0.5)
    with torch.device("meta"):
        model = G.build_model(cfg)
    n = sum(p.numel() for p in model.parameters())
    block = (
        4 * 768 * 768 + 4 * 768 + 2 * 768 * 3072 + 3072 + 768 + 4 * 768
    )  # attention, FFN, two LayerNorms
    assert (
        n == (40478 + 512) * 768 + 12 * block + 768 * 2 + 2 == 116_536_322
    )  # the paper gives no total


def test_causal_attention_equals_torch_sdpa():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 9, 16).unbind(0)  # (B, h, T, d_k)
    ours = G.causal_attention(q, k, v)
    assert (ours - F.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max() <= 1e-5


def test_block_equals_torch_post_ln_layer_with_causal_mask():
    torch.manual_seed(0)
    ours = G.Block(32, 4, 64, dropout=0.0).eval()
    theirs = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=False
    ).eval()
    with torch.no_grad():
        theirs.self_attn.in_proj_weight.copy_(ours.W_qkv.weight)
        theirs.self_attn.in_proj_bias.copy_(ours.W_qkv.bias)
        for a, b in [
            (ours.W_o, theirs.self_attn.out_proj),
            (ours.W_1, theirs.linear1),
            (ours.W_2, theirs.linear2),
            (ours.ln_1, theirs.norm1),
            (ours.ln_2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    x = torch.randn(2, 7, 32)
    mask = nn.Transformer.generate_square_subsequent_mask(7)
    assert (ours(x) - theirs(x, src_mask=mask, is_causal=True)).abs().max() <= 1e-5


def test_language_model_is_causal_and_classifier_reads_the_extract_token():
    torch.manual_seed(0)
    model = G.build_model(G.PRESETS["tiny"]).eval()
    U = G.with_tokens(torch.randint(G.N_SPECIAL, 66, (2, 10)), extract=True)
    assert U[0, 0] == G.START and U[0, -1] == G.EXTRACT and U.shape == (2, 12)
    V = U.clone()
    V[:, 6] = G.N_SPECIAL + (U[:, 6] - G.N_SPECIAL + 1) % 64  # change one word in the middle
    (a, ca), (b, cb) = model(U, classify=True), model(V, classify=True)
    assert torch.allclose(a[:, :6], b[:, :6]) and not torch.allclose(a[:, 6:], b[:, 6:])
    assert not torch.allclose(ca, cb) and ca.shape == (
        2,
        2,
    )  # the extract token sees the whole text
