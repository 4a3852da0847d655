"""Transformer runnable: tiny gate, paper parameter counts, oracles against torch's own modules."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from runnable import transformer as T
from tests.conftest import figure


def stated(fig_id: str) -> float:
    """The figure the paper states, from its record."""
    return figure("transformer", fig_id)


def count(preset: str) -> int:
    with torch.device("meta"):
        model = T.build_model(T.PRESETS[preset])
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_reverses_with_positional_encoding_and_fails_without(seed):
    r = T.train(replace(T.PRESETS["tiny"], seed=seed))
    gate = lambda v: v >= T.GATE[2]
    assert gate(r["value"]) and not gate(r["ablation"]["value"]), r
    assert r["passed"] and r["seed"] == seed and r["conditions"] == {}
    assert r["ablation"]["name"] == "no positional encoding"
    assert r["history"]["idea"][-1] == r["value"]
    assert r["history"]["ablation"][-1] == r["ablation"]["value"]


def test_without_positional_encoding_the_encoder_ignores_order():
    """§3.5: self-attention is permutation-equivariant; only the encodings tell positions apart."""
    torch.manual_seed(0)
    src = torch.randint(T.N_SPECIAL, 13, (2, 8))
    perm = torch.randperm(8)
    for pe in (False, True):
        model = T.build_model(replace(T.PRESETS["tiny"], positional_encoding=pe)).eval()
        with torch.no_grad():
            moved = model.encode(src[:, perm]) - model.encode(src)[:, perm]
        assert (moved.abs().max() <= 1e-5) == (not pe)


def test_base_params_with_shared_37000_vocab():
    # 37000 x 512 shared embedding (18.94M) + 6 encoder (3.15M each) + 6 decoder layers (4.20M each)
    # = 63,082,496. The paper's Table 3 says 65M: 2.95 % above what its stated vocabulary gives,
    # which is why the "paper" preset (checked at +-2 %) is the big model.
    n = count("base")
    assert n == 37000 * 512 + 6 * 3_152_384 + 6 * 4_204_032 == 63_082_496
    assert abs(n / stated("params-base") - 1) <= 0.03


def test_paper_preset_is_the_big_model_within_two_percent():
    assert abs(count("paper") / stated("params-big") - 1) <= 0.02  # 214,245,376


@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_torch_sdpa(causal):
    torch.manual_seed(0)
    Q, K, V = torch.randn(3, 2, 4, 7, 16).unbind(0)  # (B, h, T, d_k)
    mask = torch.ones(7, 7, dtype=torch.bool).tril() if causal else None
    ours = T.attention(Q, K, V, mask)
    assert (ours - F.scaled_dot_product_attention(Q, K, V, is_causal=causal)).abs().max() <= 1e-5


def copy_mha(ours: T.MultiHeadAttention, theirs: nn.MultiheadAttention):
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
        theirs.out_proj.weight.copy_(ours.W_o.weight)
        theirs.out_proj.bias.copy_(ours.W_o.bias)


def test_multi_head_attention_equals_torch():
    torch.manual_seed(0)
    ours, theirs = T.MultiHeadAttention(32, 4), nn.MultiheadAttention(32, 4, batch_first=True)
    copy_mha(ours, theirs)
    q, kv = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    assert (ours(q, kv, kv) - theirs(q, kv, kv, need_weights=False)[0]).abs().max() <= 1e-5
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    expected = theirs(q, q, q, attn_mask=~causal, need_weights=False)[0]  # torch: True = masked out
    assert (ours(q, q, q, causal) - expected).abs().max() <= 1e-5


def test_encoder_layer_equals_torch_post_ln():
    torch.manual_seed(0)
    ours = T.EncoderLayer(32, 4, 64, dropout=0.0).eval()
    theirs = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation="relu", batch_first=True, norm_first=False
    ).eval()
    copy_mha(ours.self_attn, theirs.self_attn)
    with torch.no_grad():
        for a, b in [
            (ours.ffn.W_1, theirs.linear1),
            (ours.ffn.W_2, theirs.linear2),
            (ours.norm1, theirs.norm1),
            (ours.norm2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    x = torch.randn(2, 6, 32)
    assert (ours(x) - theirs(x)).abs().max() <= 1e-5


def test_positional_encoding_matches_section_3_5():
    pe = T.positional_encoding(10, 8)
    assert math.isclose(pe[3, 2].item(), math.sin(3 / 10000 ** (2 / 8)), abs_tol=1e-6)
    assert math.isclose(pe[3, 3].item(), math.cos(3 / 10000 ** (2 / 8)), abs_tol=1e-6)
