"""ConvS2S: position-embedding contrast, conv block against conv1d + F.glu, causal decoder, paper preset."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from runnable import convs2s as cs
from tests.conftest import figure


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiny_reverses_with_position_embeddings_and_fails_without(seed):
    r = cs.train(replace(cs.PRESETS["tiny"], seed=seed))
    gate = lambda v: v >= cs.GATE[2]
    assert gate(r["value"]) and not gate(r["ablation"]["value"]) and r["passed"], r
    assert r["ablation"]["name"] == "no position embeddings" and r["seed"] == seed
    assert r["n_test"] >= 500 and r["history"]["ablation"][-1] == r["ablation"]["value"]


def test_without_position_embeddings_the_input_is_the_word_alone():
    """§3.1: e_j = w_j + p_j; the ablation keeps e_j = w_j."""
    tokens = torch.tensor([[3, 4, 3, 3]])
    for positions in (True, False):
        model = cs.build_model(replace(cs.PRESETS["tiny"], positions=positions))
        e = model.embed(model.w_src, model.p_src, tokens)
        assert torch.equal(e[0, 0], e[0, 2]) != positions
        assert torch.equal(e, model.w_src(tokens)) != positions


@pytest.mark.parametrize("causal", [False, True])
def test_conv_block_equals_conv1d_then_torch_glu(causal):
    """§3.2: Y = conv(X) = [A B], v = A * sigmoid(B); the decoder pads k - 1 zeros on the left only."""
    torch.manual_seed(0)
    block = cs.ConvBlock(6, 4, 3, causal, dropout=0.0)
    x = torch.randn(2, 7, 6)  # (B, T, d_in)
    out, res = block(x)
    padded = F.pad(x.transpose(1, 2), (2, 0) if causal else (1, 1))
    expected = F.glu(F.conv1d(padded, block.conv.weight, block.conv.bias), dim=1)
    assert out.shape == (2, 7, 4) and (out - expected.transpose(1, 2)).abs().max() <= 1e-5
    assert (res - block.res(x)).abs().max() == 0 and block.res.out_features == 4


def test_decoder_sees_no_future_token():
    torch.manual_seed(0)
    model = cs.build_model(cs.PRESETS["tiny"]).eval()
    src = torch.randint(3, 13, (2, 8))
    y = torch.randint(3, 13, (2, 9))
    y2 = y.clone()
    y2[:, 5] = (y2[:, 5] - 3 + 1) % 10 + 3
    with torch.no_grad():
        a, b = model(src, y), model(src, y2)
    assert torch.equal(a[:, :5], b[:, :5]) and not torch.allclose(a[:, 5:], b[:, 5:])


def test_paper_preset_on_meta():
    cfg = cs.PRESETS["paper"]
    assert cfg.f == cfg.enc_layers[0][0] == figure("convs2s", "hidden-units")
    assert len(cfg.enc_layers) == len(cfg.dec_layers) == 15
    with torch.device("meta"):
        model = cs.build_model(cfg)
        logits, attn = model.decode(
            torch.zeros(2, 7, dtype=torch.long),
            *model.encode(torch.zeros(2, 11, dtype=torch.long)),
            return_attention=True,
        )
    assert logits.shape == (2, 7, 40_000)
    assert len(attn) == 15 and attn[0].shape == (2, 7, 11)  # one attention per decoder layer (§3.3)
