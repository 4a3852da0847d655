"""FCN's worked example (papers/fcn.yaml › teaching.worked_example): the map sizes of the
runnable's paper preset (FCN-VGG16) on a 224 x 224 image, traced on the meta device, the sizes
the skips fuse, the bilinear 2x upsampling filter and what it does to a row of scores, and one
mean IU. Every number must appear in both languages."""

from __future__ import annotations

from dataclasses import replace

import torch

from ..conftest import runnable, stated_in

FCN = runnable("fcn")
stated = stated_in("fcn")


def hw(t) -> str:
    return f"${t.shape[-2]} \\times {t.shape[-1]} \\times {t.shape[1]}$"


def test_map_sizes_and_the_skips_of_fcn_vgg16():
    cfg = FCN.PRESETS["paper"]
    with torch.device("meta"):
        net = FCN.FCN(cfg)
        x, feats = torch.empty(1, 3, 224, 224), []
        for block in net.blocks:
            x = block(x)
            feats.append(x)
        fc = net.fc(x)
        s32 = net.score_fr(fc)
        pool3, pool4, pool5 = feats[2], feats[3], feats[4]
        up16 = net.upscore2(s32)
        s16 = up16 + net.score_pool4(pool4)
        up8 = net.upscore_pool4(s16)
        s8 = up8 + net.score_pool3(pool3)
        out8 = net.upscore8(s8)
        out32 = FCN.FCN(replace(cfg, skips=False))(torch.empty(1, 3, 224, 224))
    assert cfg.n_classes == 21
    for name, t, stride in (("pool3", pool3, 8), ("pool4", pool4, 16), ("pool5", pool5, 32)):
        assert 224 // t.shape[-1] == stride
        stated(f"| {name} | {hw(t)} | {stride} |")
    stated(f"| {hw(fc)} | 32 |", f"| {hw(s32)} | 32 |")
    assert tuple(out32.shape) == tuple(out8.shape) == (1, 21, 224, 224)
    stated("$224 \\times 224 \\times 21$")
    assert tuple(up16.shape) == tuple(net.score_pool4(pool4).shape) == (1, 21, 14, 14)
    assert tuple(up8.shape) == tuple(net.score_pool3(pool3).shape) == (1, 21, 28, 28)
    stated(hw(up16), hw(up8))
    factors = (net.upscore2.stride[0], net.upscore_pool4.stride[0], net.upscore8.stride[0])
    assert factors == (2, 2, 8) and 7 * 2 * 2 * 8 == 224
    stated("$7 \\cdot 2 \\cdot 2 \\cdot 8 = 224$")


def test_the_bilinear_upsampling_filter():
    up = FCN.upsampler(1, 2)
    assert up.kernel_size == (4, 4) and up.stride == (2, 2)
    k = up.weight[0, 0]
    profile = k[1] / k[1].max() * 0.75  # the outer product's 1-D profile
    assert profile.tolist() == [0.25, 0.75, 0.75, 0.25]
    assert (k[0, 0].item(), k[1, 1].item()) == (0.0625, 0.5625)
    stated("$4 \\times 4$", "(0.25, 0.75, 0.75, 0.25)", "0.0625", "0.5625")
    rows = torch.tensor([0.0, 4.0, 8.0]).expand(3, 3)[None, None].contiguous()
    with torch.no_grad():
        interior = up(rows)[0, 0, 2].tolist()  # a row away from the top and bottom
    assert interior == [0, 1, 3, 5, 7, 6]
    stated("$0, 4, 8$", "$0, 1, 3, 5, 7, 6$")


def test_mean_iu_of_two_classes():
    confusion = torch.tensor([[50, 10], [5, 35]])
    iu0, iu1 = 50 / (60 + 55 - 50), 35 / (40 + 45 - 35)
    mean = FCN.mean_iu(confusion)
    assert abs(mean - (iu0 + iu1) / 2) < 1e-12
    stated(f"= {iu0:.3f}$", f"= {iu1:g}$", f"{mean:.3f}")
