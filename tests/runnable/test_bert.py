"""BERT runnable: tiny gate (masked LM and next sentence), paper parameter counts, oracle layer."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from runnable import bert as B
from tests.conftest import figure


def stated(fig_id: str) -> float:
    """The figure the paper states, from its record."""
    return figure("bert", fig_id)


def count(preset: str) -> int:
    with torch.device("meta"):
        model = B.build_model(B.PRESETS[preset])
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_bidirectional_learns_both_tasks_and_left_to_right_does_not(seed):
    r = B.train(replace(B.PRESETS["tiny"], seed=seed))
    gate = lambda v: v >= B.GATE[2]
    assert gate(r["value"]) and not gate(r["ablation"]["value"]) and r["passed"], r
    assert r["conditions"] == {"masked LM beats chance": True, "next sentence beats chance": True}
    assert r["mlm_accuracy"] >= r["mlm_chance"] + B.GATE[2] and r["nsp_accuracy"] >= 0.5 + B.GATE[2]
    assert r["seed"] == seed and r["ablation"]["name"] == "left-to-right context only"
    assert r["history"]["idea"][-1] == r["value"]


def test_left_to_right_mask_hides_the_right_context():
    """The ablation's causal mask: changing word 5 moves outputs at positions >= 5 only."""
    torch.manual_seed(0)
    cfg = B.PRESETS["tiny"]
    inputs, segments, _, _ = B.make_batch(cfg, 2, torch.Generator().manual_seed(0))
    changed = inputs.clone()
    changed[:, 5] = (changed[:, 5] - B.N_SPECIAL + 1) % (cfg.vocab - B.N_SPECIAL) + B.N_SPECIAL
    for bidirectional in (True, False):
        model = B.build_model(replace(cfg, bidirectional=bidirectional)).eval()
        with torch.no_grad():
            (a, nsp_a), (b, nsp_b) = model(inputs, segments), model(changed, segments)
        left_moved = not torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
        assert left_moved == bidirectional and not torch.allclose(a[:, 5:], b[:, 5:])
        assert torch.allclose(nsp_a, nsp_b, atol=1e-6) != bidirectional  # [CLS] is position 0


def test_base_params_within_two_percent():
    # embeddings 23.84M + 12 layers x 7.09M + pooler 0.59M = 109.48M, + MLM/NSP heads 0.62M = 110.11M
    assert abs(count("paper") / stated("params-base") - 1) <= 0.02


def test_large_params_within_two_percent():
    assert abs(count("large") / stated("params-large") - 1) <= 0.02  # 336.2M


def test_encoder_layer_equals_torch_gelu_layer():
    torch.manual_seed(0)
    ours = B.EncoderLayer(32, 4, 64, dropout=0.0).eval()
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
    pad = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])  # ours: True = real token
    assert (ours(x, pad) - theirs(x, src_key_padding_mask=~pad)).abs().max() <= 1e-5


def test_masking_follows_80_10_10():
    g = torch.Generator().manual_seed(0)
    inputs, _, labels, is_next = B.make_batch(B.PRESETS["tiny"], 20000, g)
    chosen = labels != -100
    cfg = B.PRESETS["tiny"]
    assert (
        abs(chosen.sum().item() / (20000 * 2 * cfg.sent_len) - 0.15) < 0.01
    )  # 15 % of the word positions
    masked = (inputs[chosen] == B.MASK).float().mean().item()
    unchanged = (inputs[chosen] == labels[chosen]).float().mean().item()  # 10 % kept + random hits
    assert abs(masked - 0.8) < 0.02 and abs(unchanged - 0.1 - 0.1 / 20) < 0.02
    assert abs(is_next.float().mean().item() - 0.5) < 0.02
