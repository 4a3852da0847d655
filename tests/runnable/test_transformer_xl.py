"""Transformer-XL runnable: copy gate with memory, near chance without; the relative shift against the
naive O(T^2) (b)+(d) terms; stop-gradient memory; the 12-layer enwik8 preset on the meta device."""

from dataclasses import replace

import torch

from tests.conftest import runnable

txl = runnable("transformer-xl")


def test_tiny_gate_recalls_words_from_the_previous_segment():
    r = txl.train(txl.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= txl.GATE[2], r


def test_without_memory_the_same_model_stays_near_chance():
    r = txl.train(replace(txl.PRESETS["tiny"], mem_len=0, steps=40))
    assert r["value"] < 2 * r["chance"] < 0.15, r


def test_rel_shift_equals_naive_b_plus_d_terms():
    torch.manual_seed(0)
    B, H, Q, M, d = 2, 3, 5, 4, 8
    K = M + Q
    q, v = torch.randn(B, H, Q, d), torch.randn(H, d)
    r = torch.randn(H, K, d)  # row k encodes distance K-1-k
    fast = txl.rel_shift((q + v[:, None]) @ r.transpose(-2, -1))  # (B, H, Q, K)
    for i in range(Q):
        for j in range(K):
            if j <= M + i:  # the causal part; the rest is masked anyway
                dist = M + i - j
                naive = ((q[:, :, i] + v) * r[:, K - 1 - dist]).sum(-1)
                assert (fast[:, :, i, j] - naive).abs().max() <= 1e-5


def test_attention_scores_equal_the_four_terms_computed_one_by_one():
    """§3.3: A_ij = E_i W_q W_kE E_j + E_i W_q W_kR R_{i-j} + u W_kE E_j + v W_kR R_{i-j}, via the layer."""
    torch.manual_seed(0)
    cfg = txl.Config(d_model=8, n_head=1)
    attn, Q, M = txl.RelMultiHeadAttn(cfg), 3, 2
    h, mem, u, v = torch.randn(1, Q, 8), torch.randn(1, M, 8), torch.randn(1, 8), torch.randn(1, 8)
    K = M + Q
    R = txl.sinusoid(torch.arange(K - 1, -1, -1), 8)
    with torch.no_grad():
        scores = attn.scores(h, mem, R, u, v)  # (1, 1, Q, K), before the mask
    E = torch.cat([mem, h], 1)[0]
    Wq, WkE, WkR = attn.W_q.weight, attn.W_kE.weight, attn.W_kR.weight
    for i in range(Q):
        for j in range(M + i + 1):
            q_i, k_j = Wq @ h[0, i], WkE @ E[j]  # the W's are (out, in): W x
            r_ij = WkR @ txl.sinusoid(torch.tensor([M + i - j]), 8)[0]
            a = q_i @ k_j + q_i @ r_ij + u[0] @ k_j + v[0] @ r_ij
            assert abs(scores[0, 0, i, j].item() - a.item() / 8**0.5) <= 1e-5


def test_memory_is_used_and_carries_no_gradient():
    torch.manual_seed(0)
    cfg = txl.PRESETS["tiny"]
    model = txl.build_model(cfg).eval()
    seg1, seg2 = torch.randint(18, (2, 12)), torch.randint(18, (2, 12))
    _, mems = model(seg1)
    assert len(mems) == cfg.n_layer and all(
        m.shape == (2, 12, 64) and not m.requires_grad for m in mems
    )
    out_a, _ = model(seg2, mems)
    _, other = model(torch.randint(18, (2, 12)))
    out_b, _ = model(seg2, other)
    assert not torch.allclose(out_a, out_b)  # the previous segment changes the output


def test_paper_preset_on_meta():
    with torch.device("meta"):
        model = txl.build_model(txl.PRESETS["paper"])
        logits, mems = model(torch.zeros(1, 16, dtype=torch.long))
    n = sum(p.numel() for p in model.parameters())
    assert logits.shape == (1, 16, 204) and len(mems) == 12
    assert 40e6 < n < 42e6  # about 41M (12L enwik8 model)
