"""ELMo's worked example (papers/elmo.yaml › teaching.worked_example): the L + 1 vectors the
runnable's `BiLM.layers` returns at each position, one scalar mix with small numbers computed by
the runnable's `ScalarMix` (and its starting point, the plain average), and the width of the task
classifier's input with and without ELMo."""

import torch

from ..conftest import runnable, stated_in

R = runnable("elmo")
H = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]], [[2.0, 2.0]]])  # (L+1, N=1, 2)
stated = stated_in("elmo")


def pair(t) -> str:
    return ", ".join(f"{v:.3f}" for v in t.tolist())


@torch.no_grad()
def test_the_layers_at_one_position():
    cfg = R.PRESETS["tiny"]
    layers = R.BiLM(cfg).layers(torch.zeros(2, cfg.sent_len, dtype=torch.long))
    assert len(layers) == cfg.L + 1 == 3
    assert all(tuple(h.shape) == (2, 12, 2 * cfg.d) == (2, 12, 64) for h in layers)
    assert torch.equal(
        layers[0][..., : cfg.d], layers[0][..., cfg.d :]
    )  # token layer written twice
    stated("`(batch, 12, 64)`", "512 + 512 = 1,024", "$L + 1 = 3$")


@torch.no_grad()
def test_one_scalar_mix():
    mix = R.ScalarMix(3)
    mix.w.copy_(torch.tensor([-1.0, 0.5, 1.0]))
    mix.gamma.fill_(0.5)
    s = torch.softmax(mix.w, 0)
    assert abs(s.sum().item() - 1) < 1e-6
    for j in range(3):
        stated(f"| {s[j]:.3f} | ({pair(s[j] * H[j, 0])}) |")
    weighted = (s[:, None] * H[:, 0]).sum(0)
    out = mix(H)[0]
    assert torch.allclose(out, 0.5 * weighted)
    stated(pair(weighted), f"({pair(out)})")
    start = R.ScalarMix(3)(H)[0]  # w = 0, gamma = 1
    assert torch.allclose(start, H[:, 0].mean(0))
    stated(pair(start), "$1/3$")


def test_what_the_task_adds():
    cfg = R.PRESETS["tiny"]
    mix = R.ScalarMix(cfg.L + 1)
    assert sum(p.numel() for p in mix.parameters()) == cfg.L + 2 == 4
    stated("$L + 2 = 4$", f"{cfg.d} + {2 * cfg.d} = {3 * cfg.d}")
