"""Neural Machine Translation by Jointly Learning to Align and Translate (additive attention).

Paper: Neural Machine Translation by Jointly Learning to Align and Translate (Bahdanau et al., 2015) https://arxiv.org/abs/1409.0473
A bidirectional GRU encoder gives one annotation h_j = [fwd h_j; bwd h_j] per source word (§3.2).
Instead of one fixed vector, the decoder computes, at every step, alignment scores
e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j), weights alpha_ij = softmax_j(e_ij) and a context
c_i = sum_j alpha_ij h_j (Eqs. 5-6), then s_i = GRU(s_{i-1}, y_{i-1}, c_i) and a maxout readout
(App. A). Tiny task: copy held-out digit sequences (greedy decoding, exact match). The ablation
drops the alignment model: one fixed context, the mean annotation, at every step (same data, steps
and seed). Extra condition: the learnt alignment is diagonal (argmax_j alpha_ij = i).
Run: python -m runnable.attention --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("exact-match", ">=", 0.9)
BOS, EOS, N_SPECIAL = 0, 1, 2  # digits are tokens 2 .. vocab - 1


@dataclass
class Config:
    m: int = 32  # word embedding size (620 in the paper)
    n: int = 64  # hidden units of each GRU (1000)
    n_a: int = 64  # hidden units of the alignment model, n' (1000)
    l: int = 32  # noqa: E741 (the paper's l); maxout units of the readout (500)
    vocab: int = N_SPECIAL + 10  # 30000 words per language in the paper (K_x, K_y)
    vocab_y: int = 0  # target vocabulary; 0 = same as vocab
    attend: bool = True  # False: the ablation, c_i = mean_j h_j at every step
    seq_len: int = 10
    steps: int = 250
    evals: int = 5  # evaluation points for the history chart
    batch_size: int = 64
    lr: float = 3e-3  # Adadelta in the paper; Adam here
    n_test: int = 1000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(m=620, n=1000, n_a=1000, l=500, vocab=30000, steps=500),  # App. A.2 / B
    "gpu": Config(
        m=256,
        n=512,
        n_a=512,
        l=256,
        vocab=N_SPECIAL + 100,
        seq_len=40,
        steps=3000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


class RNNsearch(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        n, K_y, self.attend = cfg.n, cfg.vocab_y or cfg.vocab, cfg.attend
        self.E_x, self.E = nn.Embedding(cfg.vocab, cfg.m), nn.Embedding(K_y, cfg.m)  # src, tgt
        self.encoder = nn.GRU(cfg.m, n, batch_first=True, bidirectional=True)  # §3.2 BiRNN
        self.W_s = nn.Linear(n, n)  # s_0 = tanh(W_s bwd h_1), App. A.2.2
        self.W_a = nn.Linear(n, cfg.n_a, bias=False)  # the alignment model a(s, h)
        self.U_a, self.v_a = nn.Linear(2 * n, cfg.n_a), nn.Linear(cfg.n_a, 1, bias=False)
        self.decoder = nn.GRUCell(cfg.m + 2 * n, n)  # s_i = f(s_{i-1}, y_{i-1}, c_i)
        self.U_o = nn.Linear(n, 2 * cfg.l)  # readout t~_i, App. A.2.2
        self.V_o = nn.Linear(cfg.m, 2 * cfg.l, bias=False)
        self.C_o = nn.Linear(2 * n, 2 * cfg.l, bias=False)
        self.W_o = nn.Linear(cfg.l, K_y)

    def encode(self, x):  # (B, T_x)
        h, _ = self.encoder(self.E_x(x))  # (B, T_x, 2n): [fwd h_j; bwd h_j]
        n = h.size(-1) // 2
        s_0 = torch.tanh(self.W_s(h[:, 0, n:]))  # bwd h_1: the backward last state
        return h, s_0

    def step(self, y_prev, s_prev, h, U_h):
        """One decoder step: Eqs. 5-6 (attention), then the GRU update and the maxout readout."""
        if self.attend:
            e = self.v_a(torch.tanh(self.W_a(s_prev)[:, None] + U_h)).squeeze(-1)  # e_ij, Eq. 6
            alpha = torch.softmax(e, dim=-1)  # (B, T_x) alpha_ij, Eq. 6
        else:  # ablation: one fixed context c
            alpha = torch.full_like(U_h[..., 0], 1 / U_h.size(1))
        c = (alpha[:, :, None] * h).sum(1)  # (B, 2n) c_i, Eq. 5
        Ey = self.E(y_prev)  # (B, m)
        s = self.decoder(torch.cat([Ey, c], -1), s_prev)  # (B, n)
        t_tilde = self.U_o(s) + self.V_o(Ey) + self.C_o(c)  # (B, 2l)
        t = t_tilde.view(t_tilde.size(0), -1, 2).max(-1).values  # (B, l) maxout over pairs
        return self.W_o(t), s, alpha  # logits (B, K_y)

    def forward(self, x, y_in):  # teacher forcing: (B, T_y, K_y), (B, T_y, T_x)
        h, s = self.encode(x)
        U_h = self.U_a(h)  # (B, T_x, n_a), once (App. A.1.2)
        logits, alphas = [], []
        for i in range(y_in.size(1)):
            out, s, alpha = self.step(y_in[:, i], s, h, U_h)
            logits.append(out), alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)

    @torch.no_grad()
    def greedy(self, x, T: int):
        h, s = self.encode(x)
        U_h, y = self.U_a(h), torch.full((x.size(0),), BOS, device=x.device)
        ys, alphas = [], []
        for _ in range(T):
            out, s, alpha = self.step(y, s, h, U_h)
            y = out.argmax(-1)
            ys.append(y), alphas.append(alpha)
        return torch.stack(ys, 1), torch.stack(alphas, 1)  # (B, T), (B, T, T_x)


def build_model(cfg: Config) -> nn.Module:
    return RNNsearch(cfg)


def make_data(cfg: Config, n: int, g: torch.Generator):
    """Copy task: the target is the source digits, then EOS; step i should align with j = i."""
    x = torch.randint(N_SPECIAL, cfg.vocab, (n, cfg.seq_len), generator=g)
    return x, torch.cat([x, torch.full((n, 1), EOS)], 1)


def fit(cfg: Config, device: str, test) -> dict:
    """Train one model on fresh samples; held-out exact match at `evals` points along the way."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)  # the same batches for both models
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    x_test, y_test = (t.to(device) for t in test)
    every, history, tokens, train_s = max(1, cfg.steps // cfg.evals), [], 0, 0.0
    for step in range(1, cfg.steps + 1):
        start = time.perf_counter()
        x, y = (t.to(device) for t in make_data(cfg, cfg.batch_size, g))  # fresh samples each step
        y_in = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], 1)
        with torch.autocast(**amp):
            logits, _ = model(x, y_in)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())  # -log p(y | x), Eq. 2
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # norm clipping, App. B.2.1
        opt.step()
        sched.step()
        tokens += x.numel() + y.numel()
        train_s += time.perf_counter() - start
        if step % every == 0 or step == cfg.steps:
            with torch.autocast(**amp):
                pred, alpha = model.greedy(x_test, cfg.seq_len + 1)
            history.append((pred == y_test).all(1).float().mean().item())
    target_j = torch.arange(cfg.seq_len, device=device)  # copy: step i reads source position i
    alignment = (alpha[:, : cfg.seq_len].argmax(-1) == target_j).float().mean().item()
    return {
        "value": history[-1],
        "history": history,
        "alignment": alignment,
        "params": sum(p.numel() for p in model.parameters()),
        "final_loss": loss.item(),
        "tokens_per_s": tokens / train_s,
        "eval_every": every,
    }


def train(cfg: Config, device: str = "cpu") -> dict:
    start = time.perf_counter()
    test = make_data(cfg, cfg.n_test, torch.Generator().manual_seed(cfg.seed + 10_000))  # held out
    idea = fit(replace(cfg, attend=True), device, test)
    ablation = fit(replace(cfg, attend=False), device, test)
    gate = lambda v: v >= GATE[2]
    conditions = {"alignment is diagonal": gate(idea["alignment"])}
    at = [min(cfg.steps, idea["eval_every"] * (i + 1)) for i in range(len(idea["history"]))]
    return {
        "metric": GATE[0],
        "value": idea["value"],
        "ablation": {"name": "fixed context (no alignment model)", "value": ablation["value"]},
        "conditions": conditions,
        "history": {
            "x": "step",
            "at": at,
            "idea": idea["history"],
            "ablation": ablation["history"],
        },
        "passed": gate(idea["value"]) and not gate(ablation["value"]) and all(conditions.values()),
        "seed": cfg.seed,
        "exact_match": idea["value"],
        "alignment": idea["alignment"],
        "params": idea["params"],
        "final_loss": idea["final_loss"],
        "seconds": time.perf_counter() - start,
        "tokens_per_s": idea["tokens_per_s"],
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
