"""Short attention's worked example (papers/short-attention.yaml › teaching.worked_example): the
runnable's `memory` windows on a 4-step sequence, and one key-value-predict step with identity
weights (scores, weights, read-out, h*) — recomputed with torch and with the runnable's
`ShortAttentionLM.forward` given the same weights."""

import torch
from torch import nn

from ..conftest import runnable, stated_in

S = runnable("short-attention")
K_T, P_T = torch.tensor([0.5, 0.0]), torch.tensor([0.0, -0.5])
KEYS = torch.tensor([[1.0, 0.5], [-1.0, 0.0], [0.0, -0.5]])  # slots t-3, t-2, t-1
VALUES = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0]])
stated = stated_in("short-attention")


def f3(v) -> str:
    return f"{float(v):.3f}"


def vec(v) -> str:
    return f"({f3(v[0])}, {f3(v[1])})"


def test_memory_windows():
    x = torch.tensor([10.0, 20.0, 30.0, 40.0]).view(1, 4, 1)
    win = S.memory(x, 3)[0, :, :, 0]
    assert win.tolist() == [[0, 0, 0], [0, 0, 10], [0, 10, 20], [10, 20, 30]]
    for t, row in enumerate(win.tolist()):
        stated(f"| {t} | {', '.join(str(int(v)) for v in row)} |")
    stated("$L = 3$", "$t - L + l$")


def step():
    M = torch.tanh(KEYS + K_T)
    scores = M.sum(-1)  # w = (1, 1)
    alpha = torch.softmax(scores, 0)
    r = alpha @ VALUES
    return M, scores, alpha, r, torch.tanh(r + P_T)


def test_one_key_value_predict_step():
    M, scores, alpha, r, h_star = step()
    assert abs(alpha.sum().item() - 1) < 1e-6
    for j in range(3):
        stated(
            f"| ${vec(M[j])}$ | {f3(scores[j])} | {f3(alpha[j])} | "
            f"$({int(VALUES[j, 0])}, {int(VALUES[j, 1])})$ |"
        )
    stated(
        "$k_t = (0.5, 0.0)$",
        "$p_t = (0.0, -0.5)$",
        rf"{f3(alpha[0])}\,(2, 0) + {f3(alpha[1])}\,(0, 2) + {f3(alpha[2])}\,(-2, 0) = {vec(r)}",
        rf"\tanh{vec(r + P_T)} = {vec(h_star)}",
    )


def test_the_runnable_computes_the_same_step():
    """Feed the LSTM's output straight in: replace the LSTM by one returning fixed outputs."""
    cfg = S.Config(variant="kvp", L=3, k=2, d_emb=2, vocab=5)
    model = S.ShortAttentionLM(cfg)
    outs = torch.zeros(1, 4, 6)
    outs[0, :3, :2], outs[0, :3, 2:4] = KEYS, VALUES  # steps 0-2 fill the memory
    outs[0, 3, :2], outs[0, 3, 4:] = K_T, P_T  # step 3: the current output

    class Fixed(nn.Module):
        def forward(self, x):
            return outs, None

    model.lstm = Fixed()
    with torch.no_grad():
        for lin in (model.W_Y, model.W_h, model.W_r, model.W_x):
            lin.weight.copy_(torch.eye(2))
        model.w.weight.fill_(1.0)
        captured = {}
        model.out.register_forward_hook(lambda m, i, o: captured.setdefault("h_star", i[0]))
        _, alpha = model(torch.zeros(1, 4, dtype=torch.long))
    _, _, a, _, h_star = step()
    assert torch.allclose(alpha[0, 3], a, atol=1e-6)
    assert torch.allclose(captured["h_star"][0, 3], h_star, atol=1e-6)
