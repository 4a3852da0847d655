"""Luong attention runnable: tiny gate (and the same budget without attention fails), the paper preset on
meta, dot-score global attention against torch's scaled_dot_product_attention, the three scores, local-p."""

from dataclasses import replace

import torch
import torch.nn.functional as F

from tests.conftest import runnable

luong = runnable("luong-attention")


def test_tiny_reverses_held_out_sequences_with_attention():
    result = luong.train(luong.PRESETS["tiny"])
    assert result["passed"], result
    assert result["value"] >= luong.GATE[2] and result["tokens_per_s"] > 0


def test_same_budget_without_attention_fails():
    # The sequences are longer than the tiny encoder-decoder can hold in its final state.
    result = luong.train(replace(luong.PRESETS["tiny"], attention="none"))
    assert result["value"] < 0.2, result


def test_paper_preset_on_meta():
    # §4.1 gives sizes, not a total: 4 layers of 1000 cells, 1000-dim embeddings, 50K words each side.
    with torch.device("meta"):
        model = luong.build_model(luong.PRESETS["paper"])
    H, V, L = 1000, 50000, 4
    lstm = lambda n_in: 4 * H * (n_in + H) + 2 * 4 * H  # torch's LSTM keeps two bias vectors
    expected = (
        2 * V * H
        + L * lstm(H)
        + lstm(2 * H)
        + (L - 1) * lstm(H)
        + H * H
        + (H * H + H)
        + 2 * H * H
        + (H * V + V)
    )  # W_a (general), W_p + v_p, W_c, W_s
    assert sum(p.numel() for p in model.parameters()) == expected == 222_115_000


def test_dot_global_attention_equals_torch_sdpa_with_scale_one():
    torch.manual_seed(0)
    h_t, h_bar = torch.randn(4, 16), torch.randn(4, 9, 16)
    attn = luong.Attention(replace(luong.PRESETS["tiny"], hidden=16, score="dot"))
    c_t, a_t = luong.global_attention(h_t, h_bar, attn.score)
    ref = F.scaled_dot_product_attention(h_t[:, None], h_bar, h_bar, scale=1.0)[:, 0]
    assert (c_t - ref).abs().max() <= 1e-5
    assert torch.allclose(a_t.sum(-1), torch.ones(4))


def test_general_and_concat_scores_follow_eq_8():
    torch.manual_seed(0)
    h_t, h_bar = torch.randn(2, 8), torch.randn(2, 5, 8)
    gen = luong.Attention(replace(luong.PRESETS["tiny"], hidden=8, score="general"))
    expected = torch.einsum("bh,hk,bsk->bs", h_t, gen.W_a.weight, h_bar)
    assert (gen.score(h_t, h_bar) - expected).abs().max() <= 1e-5
    cat = luong.Attention(replace(luong.PRESETS["tiny"], hidden=8, score="concat"))
    s = 3
    expected = cat.v_a.weight @ torch.tanh(cat.W_a.weight @ torch.cat([h_t[1], h_bar[1, s]]))
    assert (cat.score(h_t, h_bar)[1, s] - expected).abs().max() <= 1e-5


def test_local_p_attends_only_inside_the_window():
    torch.manual_seed(0)
    cfg = replace(luong.PRESETS["tiny"], hidden=8, attention="local-p", D=2)
    attn = luong.Attention(cfg)
    h_t, h_bar = torch.randn(3, 8), torch.randn(3, 20, 8)
    _, a_t = attn(h_t, h_bar)
    p_t = 20 * torch.sigmoid(attn.v_p(torch.tanh(attn.W_p(h_t))))  # Eq. 9
    s = torch.arange(20)
    outside = (s < p_t.floor() - 2) | (s > p_t.floor() + 2)
    assert a_t[outside].abs().max() == 0 and (a_t[~outside] > 0).all()


def test_input_feeding_changes_the_next_step():
    torch.manual_seed(0)
    model = luong.build_model(replace(luong.PRESETS["tiny"], hidden=16, emb=8)).eval()
    x = torch.randint(2, 12, (2, 6))
    h_bar, state = model.encode(x)
    y = torch.zeros(2, dtype=torch.long)
    a = model.step(y, torch.zeros(2, 16), state, h_bar)[0]
    b = model.step(y, torch.ones(2, 16), state, h_bar)[0]
    assert model.decoder[0].input_size == 8 + 16 and (a - b).abs().max() > 1e-4
