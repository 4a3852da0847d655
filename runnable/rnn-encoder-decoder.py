"""RNN Encoder-Decoder with the gated recurrent unit (GRU).

Paper: Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine Translation (Cho et al., 2014) https://arxiv.org/abs/1406.1078
One GRU reads the source and squeezes it into a single summary c = tanh(V h_N); a second GRU,
started from tanh(V' c), generates the target and sees the same c at every step, in its gates
and in its maxout readout (§2.2, App. A). The hidden unit is new: a reset gate r decides how much
of the previous state feeds the candidate, an update gate z mixes old state and candidate (Eqs. 5-8).
Gate: exact-match accuracy of greedily decoded reversals of held-out digit sequences >= 0.9.
Run: kb run rnn-encoder-decoder
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("exact-match", ">=", 0.9)
BOS, EOS, N_SPECIAL = 0, 1, 2  # digits are tokens 2 .. vocab - 1


@dataclass
class Config:
    hidden: int = 96  # GRU units in the encoder and the decoder (1000 in the paper)
    emb: int = 32  # word embedding size: the rank-100 input factorisation (App. A)
    maxout: int = 64  # maxout units of the readout, each pooling 2 (500)
    out_rank: int = 32  # rank of the factorised output matrix (100)
    vocab: int = N_SPECIAL + 10  # 15000 words per language in the paper (§4.1)
    reset_after: bool = False  # False: Eq. 8, U (r * h); True: r * (U h + b), as torch/cuDNN do
    seq_len: int = 5
    steps: int = 400
    batch_size: int = 64
    lr: float = 1e-2  # Adadelta in the paper (App. A); Adam here
    clip: float = 5.0
    n_test: int = 1000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(hidden=1000, emb=100, maxout=500, out_rank=100, vocab=15000),  # §4.1 + App. A
    "gpu": Config(
        hidden=512,
        emb=128,
        maxout=256,
        out_rank=128,
        vocab=N_SPECIAL + 100,
        seq_len=12,
        steps=4000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


class GRUCell(nn.Module):
    """§2.3. W acts on the input, U on the previous state; rows stacked as [r; z; candidate]."""

    def __init__(self, n_in: int, hidden: int, reset_after: bool = False):
        super().__init__()
        self.H, self.reset_after = hidden, reset_after
        self.W = nn.Linear(n_in, 3 * hidden)  # W_r, W_z, W
        self.U = nn.Linear(hidden, 3 * hidden, bias=reset_after)  # U_r, U_z, U

    def forward(self, x, h):  # (B, n_in), (B, H) -> (B, H)
        H = self.H
        Wx = self.W(x)  # (B, 3H)
        U_r, U_z, U = self.U.weight.split(H)  # three (H, H) blocks
        if self.reset_after:
            Uh_r, Uh_z, Uh = self.U(h).split(H, -1)
        else:
            Uh_r, Uh_z = h @ U_r.T, h @ U_z.T
        r = torch.sigmoid(Wx[:, :H] + Uh_r)  # Eq. 5: reset gate
        z = torch.sigmoid(Wx[:, H : 2 * H] + Uh_z)  # Eq. 6: update gate
        if self.reset_after:
            h_tilde = torch.tanh(Wx[:, 2 * H :] + r * Uh)  # torch's variant: r * (U h + b)
        else:
            h_tilde = torch.tanh(Wx[:, 2 * H :] + (r * h) @ U.T)  # Eq. 8: phi(W x + U (r * h))
        return z * h + (1 - z) * h_tilde  # Eq. 7


class EncoderDecoder(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        H, e = cfg.hidden, cfg.emb
        self.e_x, self.e_y = nn.Embedding(cfg.vocab, e), nn.Embedding(cfg.vocab, e)
        self.encoder = GRUCell(e, H, cfg.reset_after)
        self.V = nn.Linear(H, H)  # c = tanh(V h_N) (App. A)
        self.V_dec = nn.Linear(H, H)  # h'_0 = tanh(V' c)
        self.decoder = GRUCell(e + H, H, cfg.reset_after)  # gates see [e(y_{t-1}); c]: W e + C c
        self.O_h = nn.Linear(H, 2 * cfg.maxout)  # readout s' = O_h h' + O_y e(y) + O_c c
        self.O_y = nn.Linear(e, 2 * cfg.maxout, bias=False)
        self.O_c = nn.Linear(H, 2 * cfg.maxout, bias=False)
        self.G_l = nn.Linear(cfg.maxout, cfg.out_rank, bias=False)  # output matrix of rank out_rank
        self.G_r = nn.Linear(cfg.out_rank, cfg.vocab)

    def encode(self, x):  # (B, T_x) -> c (B, H)
        h = x.new_zeros(x.size(0), self.V.in_features, dtype=torch.float)
        for t in range(x.size(1)):  # h_t = f(h_{t-1}, x_t), Eq. 1
            h = self.encoder(self.e_x(x[:, t]), h)
        return torch.tanh(self.V(h))  # the fixed-length summary c

    def step(self, y_prev, h, c):  # one decoder step, Eq. 2 / §2.2
        ey = self.e_y(y_prev)  # (B, e)
        h = self.decoder(torch.cat([ey, c], -1), h)  # h_t = f(h_{t-1}, y_{t-1}, c)
        s = self.O_h(h) + self.O_y(ey) + self.O_c(c)  # (B, 2 * maxout)
        s = s.view(s.size(0), -1, 2).max(-1).values  # maxout, pools of 2
        return self.G_r(self.G_l(s)), h  # logits of g(h_t, y_{t-1}, c)

    def forward(self, x, y_in):  # teacher forcing -> (B, T_y, vocab)
        c = self.encode(x)
        h, logits = torch.tanh(self.V_dec(c)), []
        for t in range(y_in.size(1)):
            out, h = self.step(y_in[:, t], h, c)
            logits.append(out)
        return torch.stack(logits, 1)

    @torch.no_grad()
    def greedy(self, x, T: int):
        c = self.encode(x)
        h, y, ys = torch.tanh(self.V_dec(c)), torch.full((x.size(0),), BOS, device=x.device), []
        for _ in range(T):
            out, h = self.step(y, h, c)
            y = out.argmax(-1)
            ys.append(y)
        return torch.stack(ys, 1)  # (B, T)


def build_model(cfg: Config) -> nn.Module:
    return EncoderDecoder(cfg)


def make_data(cfg: Config, n: int, g: torch.Generator):
    """Reversal task: target = source digits reversed, then EOS."""
    x = torch.randint(N_SPECIAL, cfg.vocab, (n, cfg.seq_len), generator=g)
    return x, torch.cat([x.flip(1), torch.full((n, 1), EOS)], 1)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g, g_test = (
        torch.Generator().manual_seed(cfg.seed),
        torch.Generator().manual_seed(cfg.seed + 10_000),
    )
    test_x, test_y = make_data(cfg, cfg.n_test, g_test)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    test_set = {tuple(s) for s in test_x.tolist()}
    start, tokens = time.perf_counter(), 0
    for _ in range(cfg.steps):
        x, y = make_data(cfg, cfg.batch_size, g)
        keep = torch.tensor(
            [tuple(s) not in test_set for s in x.tolist()]
        )  # held out: never trained on
        x, y = x[keep].to(device), y[keep].to(device)
        y_in = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], 1)  # shifted right
        with torch.autocast(**amp):
            logits = model(x, y_in)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), y.flatten()
        )  # maximise log p(y | x), Eq. 4
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        tokens += x.numel() + y.numel()
    train_s = time.perf_counter() - start
    model.eval()
    with torch.autocast(**amp):
        pred = model.greedy(test_x.to(device), cfg.seq_len + 1).cpu()
    value = (pred == test_y).all(1).float().mean().item()
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": params,
        "token_accuracy": (pred == test_y).float().mean().item(),
        "final_loss": loss.item(),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": tokens / train_s,
        "model_flops_per_s": 6 * params * tokens / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
