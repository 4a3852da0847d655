"""XLNet runnable: tiny gate, the two-stream masks built from the permutation, and an oracle layer."""

import torch
from torch import nn

from runnable import xlnet as X


def test_tiny_predicts_held_out_targets_under_random_orders():
    r = X.train(X.PRESETS["tiny"])
    assert r["passed"], r
    assert r["value"] >= X.GATE[2] and r["accuracy_mirror_seen"] > 0.9


def test_masks_follow_the_factorisation_order():
    rank = torch.tensor([[2, 0, 3, 1]])  # z = (1, 3, 0, 2)
    content, query = X.two_stream_masks(rank)
    assert content[0].tolist() == [[1, 1, 0, 1], [0, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1]]
    assert query[0].tolist() == [[0, 1, 0, 1], [0, 1, 0, 0], [1, 1, 0, 1], [0, 1, 0, 0]]
    # position 1 is z_1: nothing precedes it, so (inert) it sees only itself; it is never a target


def test_query_stream_cannot_see_its_own_content_but_content_stream_can():
    torch.manual_seed(0)
    cfg = X.Config(L=3)
    model = X.build_model(cfg).eval()
    g = torch.Generator().manual_seed(0)
    tokens, rank, target = X.make_batch(cfg, 4, g)
    with torch.no_grad():
        h, g_out = model(tokens, rank)
        for b in range(4):
            i = int(rank[b].argmax())  # z_T: the last position of the order
            changed = tokens.clone()
            changed[b, i] = (changed[b, i] + 1) % cfg.vocab  # change x_{z_t}
            h2, g2 = model(changed, rank)
            assert (
                g2[b, i] - g_out[b, i]
            ).abs().max() <= 1e-6  # g_{z_t} does not depend on x_{z_t}
            assert (h2[b, i] - h[b, i]).abs().max() > 1e-3  # h_{z_t} does
            first = int(rank[b].argmin())  # z_1: every other g_{z_t} may depend on it
            changed = tokens.clone()
            changed[b, first] = (changed[b, first] + 1) % cfg.vocab
            later = rank[b] > 0
            assert (model(changed, rank)[1][b, later] - g_out[b, later]).abs().max() > 1e-4


def test_query_stream_ignores_tokens_later_in_the_order():
    torch.manual_seed(0)
    cfg = X.PRESETS["tiny"]
    model = X.build_model(cfg).eval()
    tokens, rank, _ = X.make_batch(cfg, 2, torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, g_out = model(tokens, rank)
        i = int((rank[0] == 3).nonzero())  # z_4
        changed = tokens.clone()
        changed[0, rank[0] >= 3] = (changed[0, rank[0] >= 3] + 5) % cfg.vocab  # x_{z_>=4} changed
        assert (model(changed, rank)[1][0, i] - g_out[0, i]).abs().max() <= 1e-6


def test_content_stream_with_a_causal_order_equals_torch_layer():
    """With the identity order z = (0, 1, .., T-1) the content stream is a causal post-LN GELU encoder layer."""
    torch.manual_seed(0)
    ours = X.TwoStreamLayer(32, 4, 64, dropout=0.0).eval()
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
    content, query = X.two_stream_masks(torch.arange(6).expand(2, 6))
    h, _ = ours(x, x, content, query)
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)  # torch: True = masked out
    assert (h - theirs(x, src_mask=causal)).abs().max() <= 1e-5


def test_paper_preset_has_xlnet_large_shape():
    with torch.device("meta"):
        model = X.build_model(X.PRESETS["paper"])
    assert len(model.layers) == 24 and model.tok.weight.shape == (32000, 1024)
