"""Sequence to Sequence Learning with Neural Networks.

Paper: Sequence to Sequence Learning with Neural Networks (Sutskever et al., 2014) https://arxiv.org/abs/1409.3215
A deep LSTM reads the source sequence into its final state (h, c) of every layer: one fixed-size
vector. A second deep LSTM, started from that state, generates the target one token at a time
(Eq. 1: p(y_1..y_T' | x) = prod_t p(y_t | v, y_1..y_{t-1})). Reversing the source (§3.3) puts the
first source words next to the first target words and makes optimisation much easier. Tiny task:
copy held-out digit sequences; the ablation reads the source in its natural order, with the same
data, steps and seed, and must fail the same gate.
Run: python -m runnable.seq2seq --preset tiny
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
    layers: int = 2  # 4 in the paper
    hidden: int = 96  # LSTM cells per layer (1000)
    emb: int = 64  # word embedding size (1000)
    vocab_in: int = N_SPECIAL + 10  # 160000 source words in the paper
    vocab_out: int = N_SPECIAL + 10  # 80000 target words
    reverse_source: bool = True  # §3.3; train() runs both orders (False is the ablation)
    seq_len: int = 7
    steps: int = 1200
    evals: int = 5  # evaluation points for the history chart
    batch_size: int = 64
    lr: float = 1e-2  # Adam; the paper: SGD at 0.7, halved each half epoch after 5
    clip: float = 5.0  # §3.4: rescale gradients whose norm exceeds 5
    n_test: int = 1000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        layers=4,
        hidden=1000,
        emb=1000,
        vocab_in=160000,
        vocab_out=80000,  # §3.4
        steps=1000,
    ),
    "gpu": Config(
        layers=4,
        hidden=512,
        emb=256,
        vocab_in=N_SPECIAL + 100,
        vocab_out=N_SPECIAL + 100,
        seq_len=20,
        steps=4000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


class Seq2Seq(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.reverse_source = cfg.reverse_source
        self.src_embed = nn.Embedding(cfg.vocab_in, cfg.emb)
        self.tgt_embed = nn.Embedding(cfg.vocab_out, cfg.emb)
        self.encoder = nn.LSTM(cfg.emb, cfg.hidden, cfg.layers, batch_first=True)  # two LSTMs (§2)
        self.decoder = nn.LSTM(cfg.emb, cfg.hidden, cfg.layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden, cfg.vocab_out)  # softmax over the target vocabulary
        for p in self.parameters():  # §3.4: uniform in [-0.08, 0.08]
            nn.init.uniform_(p, -0.08, 0.08)

    def encode(self, x):  # (B, T_x) -> v = (h, c), (L, B, H) each
        if self.reverse_source:
            x = x.flip(1)  # §3.3: "c, b, a" -> "α, β, γ"
        _, v = self.encoder(self.src_embed(x))  # the last (h, c) of every layer
        return v

    def decode(self, y_in, state):  # (B, T_y) -> (B, T_y, vocab), state
        out, state = self.decoder(self.tgt_embed(y_in), state)  # (B, T_y, hidden)
        return self.out(out), state

    def forward(self, x, y_in):
        return self.decode(y_in, self.encode(x))[0]

    @torch.no_grad()
    def greedy(self, x, T: int):  # §3.2: a beam of size 1 does well
        state, y, ys = self.encode(x), torch.full((x.size(0), 1), BOS, device=x.device), []
        for _ in range(T):
            logits, state = self.decode(y, state)
            y = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            ys.append(y)
        return torch.cat(ys, 1)  # (B, T)


def build_model(cfg: Config) -> nn.Module:
    return Seq2Seq(cfg)


def make_data(cfg: Config, n: int, g: torch.Generator):
    """Copy task: target = source digits, then EOS (the "translation" is the identity)."""
    x = torch.randint(N_SPECIAL, min(cfg.vocab_in, cfg.vocab_out), (n, cfg.seq_len), generator=g)
    return x, torch.cat([x, torch.full((n, 1), EOS)], 1)


def fit(cfg: Config, device: str, test) -> dict:
    """Train one model on fresh samples; held-out exact match at `evals` points along the way."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)  # the same batches for both orders
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
        y_in = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], 1)  # shifted right
        with torch.autocast(**amp):
            logits = model(x, y_in)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())  # max log p(T | S), §3.1
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        tokens += x.numel() + y.numel()
        train_s += time.perf_counter() - start
        if step % every == 0 or step == cfg.steps:
            with torch.autocast(**amp):
                pred = model.greedy(x_test, cfg.seq_len + 1)
            history.append((pred == y_test).all(1).float().mean().item())
    return {
        "value": history[-1],
        "history": history,
        "final_loss": loss.item(),
        "token_accuracy": (pred == y_test).float().mean().item(),
        "params": sum(p.numel() for p in model.parameters()),
        "tokens_per_s": tokens / train_s,
        "eval_every": every,
    }


def train(cfg: Config, device: str = "cpu") -> dict:
    start = time.perf_counter()
    test = make_data(cfg, cfg.n_test, torch.Generator().manual_seed(cfg.seed + 10_000))  # held out
    idea = fit(replace(cfg, reverse_source=True), device, test)
    ablation = fit(replace(cfg, reverse_source=False), device, test)
    gate = lambda v: v >= GATE[2]
    at = [min(cfg.steps, idea["eval_every"] * (i + 1)) for i in range(len(idea["history"]))]
    return {
        "metric": GATE[0],
        "value": idea["value"],
        "ablation": {"name": "source not reversed", "value": ablation["value"]},
        "conditions": {},
        "history": {
            "x": "step",
            "at": at,
            "idea": idea["history"],
            "ablation": ablation["history"],
        },
        "passed": gate(idea["value"]) and not gate(ablation["value"]),
        "seed": cfg.seed,
        "token_accuracy": idea["token_accuracy"],
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
