"""The Transformer's worked example (papers/transformer.yaml › teaching.worked_example): one
scaled dot-product attention on a 3-token input with d_k = 4, computed by the runnable's
`attention` and checked against torch's F.scaled_dot_product_attention; the same scores without
the 1/sqrt(d_k) and with the decoder's causal mask; the sinusoidal encodings of positions 0-2 for
d_model = 4; one multi-head attention layer's shapes and parameters at the base size."""

import torch
import torch.nn.functional as F

from ..conftest import runnable, stated_in

R = runnable("transformer")

Q = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]])
K = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]])
V = torch.tensor([[2.0, 0, 0, 1], [0, 2, 0, 1], [0, 0, 2, 1]])
stated = stated_in("transformer")


def row(t: torch.Tensor, nd: int = 3) -> str:
    return ", ".join(f"{v:.{nd}f}" for v in t.tolist())


def test_one_scaled_dot_product_attention():
    scores = Q @ K.T
    scaled = scores / 4**0.5
    weights = torch.softmax(scaled, -1)
    out = R.attention(Q[None, None], K[None, None], V[None, None])[0, 0]
    assert torch.allclose(out, F.scaled_dot_product_attention(Q, K, V), atol=1e-6)
    assert torch.allclose(out, weights @ V) and out.shape == (3, 4)
    assert torch.allclose(weights.sum(-1), torch.ones(3))
    assert scores.tolist() == [[2, 0, 1], [0, 2, 1], [2, 2, 2]]
    table = [
        f"| {i + 1} | " + " | ".join(f"{v:.3f}" for v in w) + f" | ({row(o)}) |"
        for i, (w, o) in enumerate(zip(weights, out))
    ]  # the table's rows
    stated(r"\sqrt{4} = 2", *table)
    stated("3 × 4", "3 × 3")


def test_without_the_scale_the_softmax_is_sharper():
    sharp = torch.softmax(Q @ K.T, -1)[0]
    assert sharp.max() > torch.softmax(Q @ K.T / 2, -1)[0].max()
    stated(row(sharp))


def test_the_decoder_mask_hides_later_positions():
    causal = torch.ones(3, 3, dtype=torch.bool).tril()
    w = torch.softmax((Q @ K.T / 2).masked_fill(~causal, float("-inf")), -1)
    out = R.attention(Q[None, None], K[None, None], V[None, None], causal)[0, 0]
    assert torch.allclose(out, w @ V)
    assert w[0].tolist() == [1.0, 0.0, 0.0]
    stated(row(w[1]))


def test_positional_encodings_of_three_positions():
    pe = R.positional_encoding(3, 4)
    stated(*(row(r) for r in pe))


def test_multi_head_attention_at_the_base_size():
    mha = R.MultiHeadAttention(512, 8)
    n = sum(p.numel() for p in mha.parameters())
    x = torch.zeros(2, 10, 512)
    assert mha(x, x, x).shape == (2, 10, 512) and mha.d_k == 64
    stated(f"{n:,}", "4 × (512 × 512 + 512)")
