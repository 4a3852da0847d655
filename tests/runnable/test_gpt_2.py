"""GPT-2 runnable: held-out perplexity near that of the true process and zero-shot translation, the XL
preset's parameter count, the pre-LN block against torch's own layer, the 1/sqrt(N) initialisation."""

import math

import torch
from torch import nn

from tests.conftest import figure, runnable

G = runnable("gpt-2")


def test_tiny_gate_perplexity_near_the_true_process_and_zero_shot_translation():
    r = G.train(G.PRESETS["tiny"])
    assert r["passed"] and 1.0 - 0.02 <= r["value"] <= G.GATE[2], r
    assert r["zero_shot_translation"] >= 0.8 and r["zero_shot_prompts"] >= 500, (
        r
    )  # unseen sentences
    assert r["tokens_per_s"] > 0 and r["model_flops_per_s"] > 0


def test_paper_preset_is_gpt2_xl_within_two_percent():
    with torch.device("meta"):
        model = G.build_model(G.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    assert n == 1_557_611_200  # +1.0 % of the 1542M of Table 2
    assert abs(n / figure("gpt-2", "params-xl") - 1) <= 0.02


def test_block_equals_torch_pre_ln_layer_with_causal_mask():
    torch.manual_seed(0)
    ours = G.Block(32, 4, dropout=0.0).eval()
    theirs = nn.TransformerEncoderLayer(
        32, 4, 128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    with torch.no_grad():
        theirs.self_attn.in_proj_weight.copy_(ours.W_qkv.weight)
        theirs.self_attn.in_proj_bias.copy_(ours.W_qkv.bias)
        for a, b in [
            (ours.W_o, theirs.self_attn.out_proj),
            (ours.W_fc, theirs.linear1),
            (ours.W_proj, theirs.linear2),
            (ours.ln_1, theirs.norm1),
            (ours.ln_2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    x = torch.randn(2, 7, 32)
    mask = nn.Transformer.generate_square_subsequent_mask(7)
    assert (ours(x) - theirs(x, src_mask=mask, is_causal=True)).abs().max() <= 1e-5


def test_residual_projections_are_initialised_scaled_by_one_over_sqrt_n():
    torch.manual_seed(0)
    model = G.build_model(G.Config(n_layer=8, d_model=128, n_head=4))
    N = 2 * 8
    assert math.isclose(model.blocks[0].W_fc.weight.std().item(), 0.02, rel_tol=0.05)
    for block in model.blocks:
        for W in (block.W_o.weight, block.W_proj.weight):
            assert math.isclose(W.std().item(), 0.02 / math.sqrt(N), rel_tol=0.05)
    assert isinstance(model.ln_f, nn.LayerNorm)  # the extra final layer norm


def test_true_process_probabilities_sum_to_one():
    cfg = G.PRESETS["tiny"]
    lang = G.Language(cfg, torch.Generator().manual_seed(1234))
    x, parallel = lang.sample(4, torch.Generator().manual_seed(0))
    n = lang.P.size(0)
    for doc in x:
        for t in (
            2,
            cfg.L + 1,
            cfg.L + 2,
            2 * cfg.L + 1,
        ):  # inside the sentence, the branch, after it
            options = ([G.EQ] if t == cfg.L + 1 else []) + list(
                range(G.N_SPECIAL, G.N_SPECIAL + n)
            )  # EQ, A words
            total = 0.0
            for tok in options:
                y = doc.clone()
                y[t] = tok
                total += lang.log_prob(y[None])[0, t - 1].exp().item()
            if t > cfg.L + 1 and doc[cfg.L + 1] == G.EQ:  # the translation word is certain
                assert lang.log_prob(doc[None])[0, t - 1].item() == 0.0
            else:
                assert math.isclose(total, 1.0, rel_tol=1e-4), (t, total)
    assert lang.log_prob(x).shape == (4, 2 * cfg.L + 1)
