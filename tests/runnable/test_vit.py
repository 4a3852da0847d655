"""ViT runnable: tiny gate, ViT-B/16 parameter count, attention and encoder block against torch's own modules."""

import torch
import torch.nn.functional as F
from torch import nn

from runnable import vit as V
from tests.conftest import figure


def test_tiny_classifies_held_out_digits_from_patch_tokens():
    result = V.train(V.PRESETS["tiny"])
    assert result["metric"] == V.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= V.GATE[2], result
    assert result["images_per_s"] > 0


def test_paper_preset_is_vit_base_16_within_two_percent():
    with torch.device("meta"):
        model = V.build_model(V.PRESETS["paper"])
    n = sum(p.numel() for p in model.parameters())
    # embedding 590,592 + [class] 768 + positions 197 x 768 + 12 blocks x 7,087,872 + LN 1,536 + head 769,000
    assert n == 590_592 + 768 + 197 * 768 + 12 * 7_087_872 + 1_536 + 769_000 == 86_567_656
    assert abs(n / figure("vit", "params-base") - 1) <= 0.02


def test_patchify_matches_unfold_for_one_channel():
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(V.patchify(x, 2), F.unfold(x, 2, stride=2).transpose(1, 2))


def copy_attention(ours: V.MultiHeadSelfAttention, theirs: nn.MultiheadAttention):
    with torch.no_grad():
        theirs.in_proj_weight.copy_(ours.U_qkv.weight)
        theirs.in_proj_bias.copy_(ours.U_qkv.bias)
        theirs.out_proj.weight.copy_(ours.U_msa.weight)
        theirs.out_proj.bias.copy_(ours.U_msa.bias)


def test_multi_head_self_attention_equals_torch():
    torch.manual_seed(0)
    ours, theirs = V.MultiHeadSelfAttention(32, 4), nn.MultiheadAttention(32, 4, batch_first=True)
    copy_attention(ours, theirs)
    z = torch.randn(2, 17, 32)
    assert (ours(z) - theirs(z, z, z, need_weights=False)[0]).abs().max() <= 1e-5


def test_block_equals_torch_pre_ln_encoder_layer():
    torch.manual_seed(0)
    ours = V.Block(32, 4, 64, dropout=0.0).eval()
    theirs = nn.TransformerEncoderLayer(
        32,
        4,
        64,
        dropout=0.0,
        activation="gelu",
        layer_norm_eps=1e-6,
        batch_first=True,
        norm_first=True,
    ).eval()
    copy_attention(ours.msa, theirs.self_attn)
    with torch.no_grad():
        for a, b in [
            (ours.fc1, theirs.linear1),
            (ours.fc2, theirs.linear2),
            (ours.ln1, theirs.norm1),
            (ours.ln2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    z = torch.randn(2, 17, 32)
    assert (ours(z) - theirs(z)).abs().max() <= 1e-5
