"""MLP-Mixer runnable: tiny gate, Mixer-B/16 parameter count, the Mixer layer against Eq. 1 in einsum form."""

import torch
import torch.nn.functional as F

from tests.conftest import figure, runnable

M = runnable("mlp-mixer")


def test_tiny_classifies_held_out_digits_with_only_mlps():
    result = M.train(M.PRESETS["tiny"])
    assert result["metric"] == M.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= M.GATE[2], result


def test_paper_preset_is_mixer_b16_within_two_percent():
    with torch.device("meta"):
        model = M.build_model(M.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    # stem 590,592 + 12 layers x (token MLP 151,108 + channel MLP 4,722,432 + 2 LN 3,072) + LN 1,536 + head 769,000
    assert n == 590_592 + 12 * (151_108 + 4_722_432 + 3_072) + 1_536 + 769_000 == 59_880_472
    assert abs(n / figure("mlp-mixer", "params-b16") - 1) <= 0.02


def test_mixer_layer_equals_eq_1_written_as_einsums():
    torch.manual_seed(0)
    S, C = 16, 24
    layer = M.MixerLayer(S, C, D_S=8, D_C=32)
    X = torch.randn(2, S, C)
    t, c = layer.token_mlp, layer.channel_mlp
    ln = lambda x, n: F.layer_norm(x, (C,), n.weight, n.bias)
    h = F.gelu(torch.einsum("ds,bsc->bdc", t.fc1.weight, ln(X, layer.ln1)) + t.fc1.bias[:, None])
    U = (
        X + torch.einsum("sd,bdc->bsc", t.fc2.weight, h) + t.fc2.bias[:, None]
    )  # mixes along patches
    h = F.gelu(torch.einsum("ec,bsc->bse", c.fc1.weight, ln(U, layer.ln2)) + c.fc1.bias)
    Y = U + torch.einsum("ce,bse->bsc", c.fc2.weight, h) + c.fc2.bias  # mixes along channels
    assert (layer(X) - Y).abs().max() <= 1e-5


def test_only_the_token_mlp_knows_patch_order():
    torch.manual_seed(0)
    layer, X, perm = M.MixerLayer(16, 24, 8, 32), torch.randn(2, 16, 24), torch.randperm(16)
    # With the token-mixing MLP active, permuting the patches does not just permute the output ...
    assert (layer(X[:, perm]) - layer(X)[:, perm]).abs().max() > 1e-3
    # ... but with it switched off the layer is the same function of every patch (permutation-equivariant).
    with torch.no_grad():
        layer.token_mlp.fc2.weight.zero_()
        layer.token_mlp.fc2.bias.zero_()
    assert (layer(X[:, perm]) - layer(X)[:, perm]).abs().max() <= 1e-5
