"""GoogLeNet's worked example (papers/googlenet.yaml › teaching.worked_example): Inception
module (3a) of the runnable on a 28x28x192 input, its channels, parameters and multiply-adds
with the 1x1 reductions and without them (Fig. 2a's naive module), the channels of all nine
modules of Table 1, and the weights of the network and of an auxiliary head."""

import torch
from torch import nn

from ..conftest import record, runnable, stated_in

G = runnable("googlenet")
EX = record("googlenet").teaching.worked_example
stated = stated_in("googlenet")


def n(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def madds(module: nn.Module, x: torch.Tensor) -> list[int]:
    """Multiply-adds of each convolution in `module` for input x, in the order they run."""
    out = []

    def hook(m, inputs, y):
        out.append(y[0].numel() * m.weight[0].numel())  # C_out H W x (C_in k k)

    hooks = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        y = module(x)
    for h in hooks:
        h.remove()
    return y, out


def naive(c_in, n1x1, n3x3, n5x5, side=28):
    """Fig. 2(a): 1x1, 3x3 and 5x5 convolutions straight on the input, pooling passed on."""
    return side * side * c_in * (n1x1 + 9 * n3x3 + 25 * n5x5)


def test_module_3a_channels_parameters_and_multiply_adds():
    m3a = G.Inception(192, 64, 96, 128, 16, 32, 32)
    y, costs = madds(m3a, torch.zeros(1, 192, 28, 28))
    assert tuple(y.shape) == (1, 256, 28, 28) and m3a.c_out == 64 + 128 + 32 + 32
    weights = sum(p.numel() for name, p in m3a.named_parameters() if name.endswith("weight"))
    assert (weights, n(m3a)) == (163_328, 163_696)  # Table 1: 159K, K = 1,024
    total = sum(costs)
    stated(
        "28×28×192",
        "64 + 128 + 32 + 32 = 256",
        "28×28×256",
        f"{weights:,}",
        f"{n(m3a):,}",
        *(f"{c:,}" for c in costs),
        f"{total:,}",
    )
    # the 5x5 branch of the record's method section: direct vs reduced
    direct5 = 28 * 28 * 32 * 25 * 192
    assert costs[3] + costs[4] == 2_408_448 + 10_035_200
    stated(f"{direct5:,}", "28 · 28 · 16 · 25 · 32")


def test_without_reductions_the_module_costs_more_and_grows():
    m3a = G.Inception(192, 64, 96, 128, 16, 32, 32)
    _, costs = madds(m3a, torch.zeros(1, 192, 28, 28))
    total, plain = sum(costs), naive(192, 64, 128, 32)
    assert plain == 303_464_448 and round(plain / total, 1) == 2.4
    stated(f"{plain:,}", f"{plain / total:.1f}", "64 + 128 + 32 + 192 = 416")


def test_channels_of_the_nine_modules_and_the_network():
    cfg = G.PRESETS["paper"]
    with torch.device("meta"):
        net = G.GoogLeNet(cfg).eval()
        x = net.stem(torch.zeros(1, 3, 224, 224))
        assert tuple(x.shape) == (1, 192, 28, 28)
        chans = []
        for layer in net.body:
            x = layer(x)
            if isinstance(layer, G.Inception):
                chans.append(x.shape[1])
    assert chans == [256, 480, 512, 512, 512, 528, 832, 832, 1024] and x.shape[-1] == 7
    stated(", ".join(map(str, chans)), f"{n(net):,}", f"{n(net.fc):,}")
    aux = G.AuxClassifier(512, 14, cfg)
    stated(f"{n(aux):,}")
    _, costs = madds(net, torch.zeros(1, 3, 224, 224, device="meta"))
    total = sum(costs) + n(net.fc) - net.fc.bias.numel()  # convolutions and the linear layer
    assert 1.5e9 < total < 1.6e9
    assert f"{total / 1e9:.2f} billion" in EX.en and f"{total / 1e8:.1f} 億" in EX.zh_hant


def test_the_network_has_57_convolutions():
    with torch.device("meta"):
        net = G.GoogLeNet(G.PRESETS["paper"])
    convs = sum(isinstance(m, nn.Conv2d) for m in net.modules())
    assert convs == 57
    for c in record("googlenet").teaching.confusions:
        if "22" in c.en:
            assert f"{convs} convolutions" in c.en and f"{convs} 個卷積" in c.zh_hant
