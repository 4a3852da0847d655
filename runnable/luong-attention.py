"""Effective Approaches to Attention-based NMT (Luong attention).

Paper: Effective Approaches to Attention-based Neural Machine Translation (Luong et al., 2015) https://arxiv.org/abs/1508.04025
A stacking-LSTM encoder-decoder; at every target step t the top decoder state h_t scores every
source state h_s with dot, general or concat (§3.1), the softmax of the scores weights a context
c_t, and the attentional state h~_t = tanh(W_c [c_t; h_t]) predicts the word (Eqs. 5-6). Input
feeding (§3.3) passes h~_{t-1} into the next step. Local-p attention (§3.2) predicts a position p_t and
looks only at a Gaussian-weighted window around it. attention="none" is the plain encoder-decoder.
Gate: exact-match accuracy of greedily decoded reversals of held-out 14-digit sequences >= 0.9.
Run: kb run luong-attention
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
    attention: str = "global"  # "global" (§3.1), "local-p" (§3.2) or "none" (no attention)
    score: str = "general"  # "dot", "general" or "concat" (§3.1)
    input_feeding: bool = True  # §3.3
    D: int = 3  # half-width of the local window (10 in the paper)
    layers: int = 1  # stacked LSTM layers (4 in the paper, §4.1)
    hidden: int = 64  # LSTM cells per layer (1000)
    emb: int = 32  # embedding size (1000)
    vocab: int = N_SPECIAL + 10  # 50000 words per language in the paper (§4.1)
    seq_len: int = 14
    steps: int = 250
    batch_size: int = 48
    lr: float = 1e-2  # plain SGD from 1.0, halved after epoch 5, in the paper (§4.1); Adam here
    clip: float = 5.0  # §4.1: gradient norm rescaled to 5
    n_test: int = 1000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        attention="local-p", score="general", D=10, layers=4, hidden=1000, emb=1000, vocab=50000
    ),
    "gpu": Config(
        layers=2,
        hidden=512,
        emb=256,
        vocab=N_SPECIAL + 100,
        seq_len=40,
        steps=4000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


def global_attention(h_t, h_bar, scores_fn, mask=None):
    """§3.1: a_t(s) = softmax_s(score(h_t, h_bar_s)); c_t = sum_s a_t(s) h_bar_s. (B, H), (B, S, H)"""
    scores = scores_fn(h_t, h_bar)  # (B, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    a_t = torch.softmax(scores, -1)  # (B, S)
    return (a_t[:, None] @ h_bar).squeeze(1), a_t  # c_t (B, H), a_t (B, S)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        H, self.cfg = cfg.hidden, cfg
        if cfg.score == "general":
            self.W_a = nn.Linear(H, H, bias=False)
        elif cfg.score == "concat":
            self.W_a, self.v_a = nn.Linear(2 * H, H, bias=False), nn.Linear(H, 1, bias=False)
        if cfg.attention == "local-p":  # Eq. 9: p_t = S sigmoid(v_p^T tanh(W_p h_t))
            self.W_p, self.v_p = nn.Linear(H, H, bias=False), nn.Linear(H, 1, bias=False)

    def score(self, h_t, h_bar):  # Eq. 8 -> (B, S)
        if self.cfg.score == "dot":  # h_t^T h_bar_s
            return (h_bar @ h_t[:, :, None]).squeeze(-1)
        if self.cfg.score == "general":  # h_t^T W_a h_bar_s
            return (self.W_a(h_bar) @ h_t[:, :, None]).squeeze(-1)
        pair = torch.cat([h_t[:, None].expand_as(h_bar), h_bar], -1)  # (B, S, 2H)
        return self.v_a(torch.tanh(self.W_a(pair))).squeeze(-1)  # v_a^T tanh(W_a [h_t; h_bar_s])

    def forward(self, h_t, h_bar):
        if self.cfg.attention == "global":
            return global_attention(h_t, h_bar, self.score)
        S, D = h_bar.size(1), self.cfg.D
        p_t = S * torch.sigmoid(self.v_p(torch.tanh(self.W_p(h_t))))  # (B, 1), in [0, S]
        s = torch.arange(S, device=h_bar.device, dtype=h_t.dtype)  # source positions
        window = (s >= p_t.floor() - D) & (s <= p_t.floor() + D)  # [p_t - D, p_t + D]
        _, align = global_attention(h_t, h_bar, self.score, window)
        a_t = align * torch.exp(-((s - p_t) ** 2) / (2 * (D / 2) ** 2))  # Eq. 10, sigma = D / 2
        return (a_t[:, None] @ h_bar).squeeze(1), a_t


class LuongNMT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        H, L, self.cfg = cfg.hidden, cfg.layers, cfg
        self.src_embed, self.tgt_embed = (
            nn.Embedding(cfg.vocab, cfg.emb),
            nn.Embedding(cfg.vocab, cfg.emb),
        )
        self.encoder = nn.LSTM(cfg.emb, H, L, batch_first=True)
        feed = H if (cfg.input_feeding and cfg.attention != "none") else 0
        self.decoder = nn.ModuleList(
            nn.LSTMCell(cfg.emb + feed if i == 0 else H, H) for i in range(L)
        )
        if cfg.attention != "none":
            self.attn = Attention(cfg)
            self.W_c = nn.Linear(2 * H, H, bias=False)  # Eq. 5: h~_t = tanh(W_c [c_t; h_t])
        self.W_s = nn.Linear(H, cfg.vocab)  # Eq. 6: p(y_t) = softmax(W_s h~_t)
        for p in self.parameters():  # §4.1: uniform in [-0.1, 0.1]
            nn.init.uniform_(p, -0.1, 0.1)

    def encode(self, x):  # (B, S) -> h_bar (B, S, H), state
        h_bar, (h, c) = self.encoder(self.src_embed(x))
        return h_bar, [(h[i], c[i]) for i in range(self.cfg.layers)]

    def step(self, y_prev, h_tilde, state, h_bar):
        inp = self.tgt_embed(y_prev)  # (B, emb)
        if self.cfg.attention != "none" and self.cfg.input_feeding:
            inp = torch.cat([inp, h_tilde], -1)  # §3.3: feed h~_{t-1} back in
        new = []
        for cell, (h, c) in zip(self.decoder, state):
            h, c = cell(inp, (h, c))
            new.append((h, c))
            inp = h
        h_t = inp  # top-layer state (B, H)
        if self.cfg.attention == "none":
            return self.W_s(h_t), h_t, new, None
        c_t, a_t = self.attn(h_t, h_bar)  # attends with the current h_t
        h_tilde = torch.tanh(self.W_c(torch.cat([c_t, h_t], -1)))  # Eq. 5
        return self.W_s(h_tilde), h_tilde, new, a_t

    def forward(self, x, y_in):  # teacher forcing -> (B, T, vocab)
        h_bar, state = self.encode(x)
        h_tilde, out = h_bar.new_zeros(x.size(0), self.cfg.hidden), []
        for t in range(y_in.size(1)):
            logits, h_tilde, state, _ = self.step(y_in[:, t], h_tilde, state, h_bar)
            out.append(logits)
        return torch.stack(out, 1)

    @torch.no_grad()
    def greedy(self, x, T: int):
        h_bar, state = self.encode(x)
        h_tilde, y, ys = (
            h_bar.new_zeros(x.size(0), self.cfg.hidden),
            torch.full_like(x[:, 0], BOS),
            [],
        )
        for _ in range(T):
            logits, h_tilde, state, _ = self.step(y, h_tilde, state, h_bar)
            y = logits.argmax(-1)
            ys.append(y)
        return torch.stack(ys, 1)  # (B, T)


def build_model(cfg: Config) -> nn.Module:
    return LuongNMT(cfg)


def make_data(cfg: Config, n: int, g: torch.Generator):
    """Reversal: target = source digits reversed, then EOS."""
    x = torch.randint(N_SPECIAL, cfg.vocab, (n, cfg.seq_len), generator=g)
    return x, torch.cat([x.flip(1), torch.full((n, 1), EOS)], 1)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g, g_test = (
        torch.Generator().manual_seed(cfg.seed),
        torch.Generator().manual_seed(cfg.seed + 10_000),
    )
    test_x, test_y = make_data(cfg, cfg.n_test, g_test)  # held out (2^-40 chance of a repeat)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    start, tokens = time.perf_counter(), 0
    for _ in range(cfg.steps):
        x, y = (t.to(device) for t in make_data(cfg, cfg.batch_size, g))
        y_in = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], 1)  # shifted right
        with torch.autocast(**amp):
            logits = model(x, y_in)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())  # Eq. 7: -log p(y | x)
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
