"""MAE runnable: tiny gate, random masking and unshuffling, an encoder that never sees masked patches,
and the Transformer block against torch's own pre-LN encoder layer."""

import torch
from torch import nn

from runnable import mae as M


def test_tiny_reconstructs_masked_patches_better_than_the_mean_patch():
    result = M.train(M.PRESETS["tiny"])
    assert result["metric"] == M.GATE[0] == "masked-mse-ratio"
    assert result["passed"] and result["value"] <= M.GATE[2], result
    assert result["masked_mse"] < result["mean_patch_mse"]


def test_masking_keeps_exactly_a_quarter_and_unshuffle_restores_order():
    B, N, ratio = 5, 196, 0.75
    ids_keep, ids_restore, mask = M.random_masking(B, N, ratio, torch.Generator().manual_seed(0))
    assert ids_keep.shape == (B, 49) and (mask.sum(1) == N - 49).all()
    tokens = torch.arange(N).repeat(B, 1)  # token i carries the value i
    kept = tokens.gather(1, ids_keep)
    assert (mask.gather(1, ids_keep) == 0).all()  # the kept ones are the unmasked ones
    full = torch.cat([kept, torch.full((B, N - 49), -1)], 1).gather(1, ids_restore)
    assert torch.equal(full[mask == 0], tokens[mask == 0]) and (full[mask == 1] == -1).all()


def test_encoder_sees_only_the_visible_patches():
    torch.manual_seed(0)
    cfg = M.PRESETS["tiny"]
    model = M.build_model(cfg).eval()
    patches = M.patchify(torch.randn(2, 1, 8, 8), cfg.patch)  # (2, 16, 4)
    ids_keep, _, mask = M.random_masking(2, 16, cfg.mask_ratio, torch.Generator().manual_seed(1))
    latent = model.encode(patches, ids_keep)
    assert latent.shape == (2, 4, cfg.D)
    changed = patches + 5 * mask[..., None]  # change only the hidden patches
    assert torch.equal(model.encode(changed, ids_keep), latent)


def test_block_equals_torch_pre_ln_encoder_layer():
    torch.manual_seed(0)
    ours = M.Block(32, 4, mlp_ratio=4)
    theirs = nn.TransformerEncoderLayer(
        32, 4, 128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    with torch.no_grad():
        theirs.self_attn.in_proj_weight.copy_(ours.qkv.weight)
        theirs.self_attn.in_proj_bias.copy_(ours.qkv.bias)
        for a, b in [
            (ours.proj, theirs.self_attn.out_proj),
            (ours.mlp[0], theirs.linear1),
            (ours.mlp[2], theirs.linear2),
            (ours.ln1, theirs.norm1),
            (ours.ln2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    x = torch.randn(2, 16, 32)
    assert (ours(x) - theirs(x)).abs().max() <= 1e-5


def test_paper_preset_builds_vit_large_encoder_on_meta():
    with torch.device("meta"):
        model = M.build_model(M.PRESETS["paper"])
    assert len(model.encoder) == 24 and len(model.decoder) == 8
    assert model.pred.out_features == 16 * 16 * 3 and model.N == 196
