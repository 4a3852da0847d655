"""Megatron-LM runnable: tiny gate, the 8.3B parameter count, and the sharded blocks against unsharded oracles."""

import torch
import torch.nn.functional as F
from torch import nn

from tests.conftest import figure, runnable

M = runnable("megatron-lm")


def test_tiny_sharded_gpt_predicts_held_out_repeats():
    r = M.train(M.PRESETS["tiny"])
    assert M.PRESETS["tiny"].k == 2
    assert r["passed"], r
    assert r["value"] >= M.GATE[2] and r["tokens_per_s"] > 0


def test_paper_preset_is_the_8_3b_model_within_two_percent():
    # 72 x (12 h^2 + 13 h) + 51,200 x 3072 + 1024 x 3072 + 2 x 3072 = 8,317,040,640 (+0.2 %)
    with torch.device("meta"):
        n = sum(p.numel() for p in M.build_model(M.PRESETS["paper"]).parameters())
    assert n == 8_317_040_640
    assert abs(n / figure("megatron-lm", "params") - 1) <= 0.02


def test_sharded_mlp_equals_unsharded_mlp_and_gradients():
    torch.manual_seed(0)
    h, k = 16, 4
    ours = M.ParallelMLP(h, k)
    with torch.no_grad():
        ours.b_B.normal_()
    ref = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(), nn.Linear(4 * h, h))
    with (
        torch.no_grad()
    ):  # A = [A_1 .. A_k] joined by columns (output rows of nn.Linear), B = [B_1; ..; B_k] by rows
        (
            ref[0].weight.copy_(torch.cat([a.weight for a in ours.A])),
            ref[0].bias.copy_(torch.cat([a.bias for a in ours.A])),
        )
        ref[2].weight.copy_(torch.cat([b.weight for b in ours.B], 1)), ref[2].bias.copy_(ours.b_B)
    x = torch.randn(3, 5, h, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = ours(x), ref(x_ref)
    assert (y - y_ref).abs().max() <= 1e-5
    y.square().sum().backward(), y_ref.square().sum().backward()
    assert (x.grad - x_ref.grad).abs().max() <= 1e-5  # the f operator's backward all-reduce
    assert (torch.cat([a.weight.grad for a in ours.A]) - ref[0].weight.grad).abs().max() <= 1e-5


def test_sharded_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    h, n_heads, k = 32, 8, 2
    ours = M.ParallelAttention(h, n_heads, k)
    with torch.no_grad():
        ours.b_o.normal_()
    theirs = nn.MultiheadAttention(h, n_heads, batch_first=True)
    d = h // k
    with torch.no_grad():  # shard i holds the rows [q_i; k_i; v_i] of its heads
        W = [w.weight.view(3, d, h) for w in ours.W_qkv]
        b = [w.bias.view(3, d) for w in ours.W_qkv]
        theirs.in_proj_weight.copy_(torch.cat([torch.cat([w[j] for w in W]) for j in range(3)]))
        theirs.in_proj_bias.copy_(torch.cat([torch.cat([c[j] for c in b]) for j in range(3)]))
        theirs.out_proj.weight.copy_(torch.cat([w.weight for w in ours.W_o], 1))
        theirs.out_proj.bias.copy_(ours.b_o)
    x = torch.randn(2, 7, h)
    causal = torch.ones(7, 7, dtype=torch.bool).triu(1)  # torch: True = masked out
    expected = theirs(x, x, x, attn_mask=causal, need_weights=False)[0]
    assert (ours(x) - expected).abs().max() <= 1e-5


def test_vocab_parallel_embedding_and_cross_entropy_equal_the_gathered_ones():
    torch.manual_seed(0)
    cfg = M.Config(vocab=24, k=3, h=12, n_heads=3, n_layers=1, seq_len=6)
    model = M.build_model(cfg)
    E = torch.cat(list(model.E))  # (V, h)
    tokens = torch.randint(cfg.vocab, (4, 6))
    assert (model.embed(tokens) - F.embedding(tokens, E)).abs().max() <= 1e-6
    shards = [torch.randn(4, 6, 8) * 3 for _ in range(3)]
    ours = M.parallel_cross_entropy(shards, tokens)
    theirs = F.cross_entropy(torch.cat(shards, -1).flatten(0, 1), tokens.flatten())
    assert abs(ours.item() - theirs.item()) <= 1e-5


def test_sharding_does_not_change_the_function():
    """The same weights give the same logits whether cut into k = 1 or k = 4 shards."""
    torch.manual_seed(0)
    c1, c4 = (
        M.Config(k=1, vocab=16, h=16, n_heads=4, seq_len=8),
        M.Config(k=4, vocab=16, h=16, n_heads=4, seq_len=8),
    )
    m1, m4 = M.build_model(c1).eval(), M.build_model(c4).eval()
    with torch.no_grad():
        for _name, p in m4.named_parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        (
            m1.E[0].copy_(torch.cat(list(m4.E))),
            m1.pos.copy_(m4.pos),
            m1.ln_f.load_state_dict(m4.ln_f.state_dict()),
        )
        for b1, b4 in zip(m1.blocks, m4.blocks):
            (
                b1.ln_1.load_state_dict(b4.ln_1.state_dict()),
                b1.ln_2.load_state_dict(b4.ln_2.state_dict()),
            )
            a1, a4, d = b1.attn, b4.attn, 4
            W = [w.weight.view(3, d, 16) for w in a4.W_qkv]
            bb = [w.bias.view(3, d) for w in a4.W_qkv]
            a1.W_qkv[0].weight.copy_(torch.cat([torch.cat([w[j] for w in W]) for j in range(3)]))
            a1.W_qkv[0].bias.copy_(torch.cat([torch.cat([c[j] for c in bb]) for j in range(3)]))
            a1.W_o[0].weight.copy_(torch.cat([w.weight for w in a4.W_o], 1)), a1.b_o.copy_(a4.b_o)
            p1, p4 = b1.mlp, b4.mlp
            (
                p1.A[0].weight.copy_(torch.cat([a.weight for a in p4.A])),
                p1.A[0].bias.copy_(torch.cat([a.bias for a in p4.A])),
            )
            p1.B[0].weight.copy_(torch.cat([b.weight for b in p4.B], 1)), p1.b_B.copy_(p4.b_B)
    x = torch.randint(16, (2, 8))
    assert (m1(x)[0] - torch.cat(m4(x), -1)).abs().max() <= 1e-5
