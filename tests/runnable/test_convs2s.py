"""ConvS2S: reversal gate, GLU against F.glu, causal decoder, the paper preset (WMT'14 En-De) on meta."""
import torch
import torch.nn.functional as F

from runnable import convs2s as cs
from tests.conftest import figure


def test_tiny_gate_reversal():
    r = cs.train(cs.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= cs.GATE[2], r


def test_glu_matches_torch():
    Y = torch.randn(4, 16, 7)
    assert (cs.glu(Y, 1) - F.glu(Y, 1)).abs().max() <= 1e-5


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
        logits, attn = model.decode(torch.zeros(2, 7, dtype=torch.long),
                                    *model.encode(torch.zeros(2, 11, dtype=torch.long)), return_attention=True)
    assert logits.shape == (2, 7, 40_000)
    assert len(attn) == 15 and attn[0].shape == (2, 7, 11)     # one attention per decoder layer (§3.3)
