"""GPT-3 runnable: few-shot (in-context) learning of held-out tasks by a frozen model, the 175B preset's
parameter count, causal attention and the pre-LN block against torch's own, evaluation without updates."""

import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import figure, runnable

G = runnable("gpt-3")


def test_tiny_gate_few_shot_beats_zero_shot_on_held_out_tasks():
    r = G.train(G.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= G.GATE[2], r
    assert r["zero_shot_accuracy"] <= r["chance"] + G.ZERO_SHOT_MARGIN, (
        r
    )  # K = 0: no better than guessing
    assert r["value"] - r["zero_shot_accuracy"] >= 0.7, r
    acc = [
        r["accuracy_by_k"][K] for K in sorted(r["accuracy_by_k"])
    ]  # uniform queries: more shots help
    assert all(b > a for a, b in zip(acc, acc[1:])) and acc[-1] - acc[0] >= 0.3, r
    assert r["held_out_tasks"] >= 1500 and r["tokens_per_s"] > 0 and r["model_flops_per_s"] > 0


def test_paper_preset_is_gpt3_175b_within_two_percent():
    with torch.device("meta"):
        model = G.build_model(G.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    # 96 x (12 d^2 + 13 d) + (50257 + 2048) d + 2 d with d = 12288: -0.23 % of Table 2.1's 175.0B
    assert (
        n
        == 96 * (12 * 12288**2 + 13 * 12288) + (50257 + 2048) * 12288 + 2 * 12288
        == 174_604_259_328
    )
    assert abs(n / figure("gpt-3", "params") - 1) <= 0.02


def test_causal_attention_equals_torch_sdpa():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 9, 16).unbind(0)  # (B, h, T, d_head)
    ours = G.causal_attention(q, k, v)
    assert (ours - F.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max() <= 1e-5


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
            (ours.W_1, theirs.linear1),
            (ours.W_2, theirs.linear2),
            (ours.ln_1, theirs.norm1),
            (ours.ln_2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    x = torch.randn(2, 7, 32)
    mask = nn.Transformer.generate_square_subsequent_mask(7)
    assert (ours(x) - theirs(x, src_mask=mask, is_causal=True)).abs().max() <= 1e-5


def test_few_shot_evaluation_updates_no_weight():
    cfg = G.PRESETS["tiny"]
    torch.manual_seed(0)
    model = G.build_model(cfg).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    f = G.sample_tasks(cfg, 200, torch.Generator().manual_seed(1), held_out=True)
    G.evaluate(model, cfg, f, cfg.k_eval, True, torch.Generator().manual_seed(2))
    assert all(p.grad is None for p in model.parameters())  # no gradient was even computed
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())


def test_held_out_maps_never_reach_training_and_prompts_are_well_formed():
    cfg = G.PRESETS["tiny"]
    g = torch.Generator().manual_seed(0)
    assert not G.is_held_out(G.sample_tasks(cfg, 5000, g)).any()
    f = G.sample_tasks(cfg, 500, g, held_out=True)
    assert G.is_held_out(f).all()
    prompt, answer = G.prompts(cfg, f, 3, True, g)  # x1 y1 x2 y2 x3 y3 x_q
    assert (
        prompt.shape == (500, 7)
        and (prompt[:, 0::2] < cfg.n_x).all()
        and (prompt[:, 1::2] >= cfg.n_x).all()
    )
    assert torch.equal(prompt[:, 1::2] - cfg.n_x, f.gather(1, prompt[:, 0:6:2]))  # y_i = f(x_i)
    assert (prompt[:, -1:] == prompt[:, 0:6:2]).any(1).all()  # the query was demonstrated
    assert torch.equal(answer - cfg.n_x, f.gather(1, prompt[:, -1:]).squeeze(1))


def test_a_later_token_does_not_change_earlier_predictions():
    torch.manual_seed(0)
    model = G.build_model(G.PRESETS["tiny"]).eval()
    x = torch.randint(G.PRESETS["tiny"].vocab, (2, 10))
    y = x.clone()
    y[:, 6] = (y[:, 6] + 1) % G.PRESETS["tiny"].vocab
    with torch.no_grad():
        assert (model(x)[:, :6] - model(y)[:, :6]).abs().max() <= 1e-6
