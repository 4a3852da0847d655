"""Skip-thought runnable: topic probe gate (above random word vectors), the decoder's conditioning equals
the paper's C_r, C_z, C terms, the uni-skip sizes on the meta device."""

import torch

from tests.conftest import figure, runnable

st = runnable("skip-thought")


def test_tiny_probe_gate_beats_random_bag_of_words():
    r = st.train(st.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= st.GATE[2], r
    assert r["value"] - r["random_bag_accuracy"] >= 0.15, r


def test_decoder_input_columns_are_the_papers_C_matrices():
    """§2: r = sigma(W_r x + U_r h + C_r h_i), z likewise, h~ = tanh(W x + U(r * h) + C h_i). nn.GRU fed
    [x; h_i] computes the same, with its input weight split as [W | C]."""
    torch.manual_seed(0)
    cfg = st.Config(d_word=5, d_hid=7)
    dec = st.build_model(cfg).dec_next
    x, h_i, h = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    W, C = dec.weight_ih_l0[:, :5], dec.weight_ih_l0[:, 5:]
    U, b_i, b_h = dec.weight_hh_l0, dec.bias_ih_l0, dec.bias_hh_l0
    gi, gh = (
        (x @ W.T + h_i @ C.T + b_i).chunk(3, -1),
        (h @ U.T + b_h).chunk(3, -1),
    )  # torch order: r, z, n
    r, z = torch.sigmoid(gi[0] + gh[0]), torch.sigmoid(gi[1] + gh[1])
    h_tilde = torch.tanh(gi[2] + r * gh[2])
    expected = (1 - z) * h_tilde + z * h
    with torch.no_grad():
        out = dec(torch.cat([x, h_i], -1)[:, None], h[None])[0][:, 0]
    assert (out - expected).abs().max() <= 1e-5


def test_objective_is_sum_of_both_neighbours_log_likelihood():
    torch.manual_seed(0)
    cfg = st.PRESETS["tiny"]
    model = st.build_model(cfg).eval()
    words, _ = st.make_stories(cfg, 4, torch.Generator().manual_seed(0))
    s_prev, s_i, s_next = st.with_eos(words[:, 0]), words[:, 1], st.with_eos(words[:, 2])
    with torch.no_grad():
        h_i = model.encode(s_i)
        both = model(s_prev, s_i, s_next)
        parts = model.decode_logprob(model.dec_prev, h_i, s_prev) + model.decode_logprob(
            model.dec_next, h_i, s_next
        )
    assert torch.allclose(both, parts) and both < 0


def test_paper_preset_is_uni_skip_on_meta():
    cfg = st.PRESETS["paper"]
    assert cfg.d_hid == figure("skip-thought", "dim-uni-skip") and cfg.vocab == figure(
        "skip-thought", "training-vocabulary"
    )
    with torch.device("meta"):
        model = st.build_model(cfg)
        h = model.encode(torch.zeros(2, 9, dtype=torch.long))
    assert h.shape == (2, 2400) and model.V.weight.shape == (20000, 2400)
