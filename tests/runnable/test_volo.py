"""VOLO runnable: tiny gate, VOLO-D1 parameter count, outlook attention against a naive loop,
and the (class) attention against torch's own multi-head attention."""

import torch
from torch import nn

from runnable import volo as V
from tests.conftest import figure


def test_tiny_classifies_held_out_digits():
    result = V.train(V.PRESETS["tiny"])
    assert result["metric"] == V.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= V.GATE[2], result


def test_paper_preset_is_volo_d1_within_two_percent():
    with torch.device("meta"):
        model = V.build_model(V.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    assert abs(n / figure("volo", "params-d1") - 1) <= 0.02  # 26,632,040 counted


def naive_outlook(oa: V.OutlookAttention, x: torch.Tensor) -> torch.Tensor:
    """Eqs. 2-5 with explicit loops: each centre (i, j) mixes the values of its K x K window with its own
    K^2 x K^2 weights, and each of the K^2 results is added to the position it belongs to."""
    B, H, W, C = x.shape
    K, h, r = oa.K, oa.heads, oa.K // 2
    V_ = oa.W_v(x)
    A = oa.W_A(x).view(B, H, W, h, K * K, K * K).softmax(-1)
    out = torch.zeros(B, H, W, C)
    d = C // h
    offsets = [(a - r, b - r) for a in range(K) for b in range(K)]
    for i in range(H):
        for j in range(W):
            window = torch.stack(
                [
                    V_[:, i + di, j + dj]
                    if 0 <= i + di < H and 0 <= j + dj < W
                    else torch.zeros(B, C)
                    for di, dj in offsets
                ],
                1,
            )  # (B, K*K, C)
            for head in range(h):
                Y = A[:, i, j, head] @ window[:, :, head * d : (head + 1) * d]  # (B, K*K, d)
                for m, (di, dj) in enumerate(offsets):
                    if 0 <= i + di < H and 0 <= j + dj < W:
                        out[:, i + di, j + dj, head * d : (head + 1) * d] += Y[:, m]
    return oa.proj(out)


def test_outlook_attention_equals_naive_loop():
    torch.manual_seed(0)
    oa = V.OutlookAttention(C=12, heads=3, K=3)
    x = torch.randn(2, 5, 6, 12)
    with torch.no_grad():
        assert (oa(x) - naive_outlook(oa, x)).abs().max() <= 1e-5


def copy_attention(ours: V.Attention, theirs: nn.MultiheadAttention):
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_kv.weight]))
        theirs.out_proj.weight.copy_(ours.proj.weight)
        ours.proj.bias.zero_()  # torch's bias=False has no output bias


def test_attention_and_class_attention_equal_torch():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(16, 4, bias=False, batch_first=True)
    x = torch.randn(2, 7, 16)
    for cls_only in (False, True):
        ours = V.Attention(16, 4, cls_only=cls_only)
        copy_attention(ours, theirs)
        q = x[:, :1] if cls_only else x  # class attention: query = [class] only
        assert (ours(x) - theirs(q, x, x, need_weights=False)[0]).abs().max() <= 1e-5


def test_class_attention_block_leaves_patch_tokens_alone():
    torch.manual_seed(0)
    block, x = V.TransformerBlock(16, 4, 2.0, cls_only=True), torch.randn(2, 7, 16)
    y = block(x)
    assert torch.equal(y[:, 1:], x[:, 1:]) and not torch.allclose(y[:, :1], x[:, :1])
