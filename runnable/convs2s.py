"""ConvS2S: convolutional sequence to sequence learning.

Paper: Convolutional Sequence to Sequence Learning (Gehring et al., 2017) https://arxiv.org/abs/1705.03122
Encoder and decoder are stacks of 1-D convolutions with gated linear units, v([A B]) = A *
sigmoid(B), residual connections scaled by sqrt(0.5) (§3.2, §3.4) and inputs e_j = w_j + p_j with
learned position embeddings (§3.1). The decoder's convolutions are causal: pad k-1 zeros on both
sides, drop the outputs that saw the future. Every decoder layer has its own attention (multi-step
attention, §3.3): d_i = W_d h_i + b_d + g_i scores the encoder outputs z_j, c_i = sum_j a_ij (z_j +
e_j), scaled by m sqrt(1/m) (§3.4) and added to h_i. Tiny task: reverse held-out binary sequences
of 16 symbols, greedy decoding. With two symbols a position cannot be found from its neighbours'
content, so the model must know "which portion of the sequence" it is dealing with, the job §3.1
gives p_j. The ablation drops the position embeddings (same data, steps and seed).
Run: python -m runnable.convs2s --preset tiny
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("exact-match", ">=", 0.9)
PAD, BOS, EOS, N_SPECIAL = 0, 1, 2, 3  # digits are tokens 3 .. 12


@dataclass
class Config:
    f: int = 64  # embedding size (512 in the paper, §4.2)
    enc_layers: tuple = ((64, 3),) * 3  # (hidden units, kernel width k) per encoder block
    dec_layers: tuple = ((64, 3),) * 3
    src_vocab: int = N_SPECIAL + 10
    tgt_vocab: int = N_SPECIAL + 10
    max_len: int = 64  # positions with a learned embedding
    dropout: float = 0.0
    positions: bool = True  # §3.1 p_j; False is the ablation
    seq_len: int = 16
    n_digits: int = 2  # symbols in the sequences to reverse
    n_train: int = 20000
    n_test: int = 1000
    steps: int = 300
    evals: int = 5  # evaluation points for the history chart
    batch_size: int = 64
    lr: float = 2e-3  # Adam; the paper: Nesterov, lr 0.25, clip 0.1 (§4.2)
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # §5.1, WMT'14 En-De: 15 + 15 layers, 512 units in the first ten, 768 in the next three
    # (k = 3), two final 2048-unit linear layers (k = 1); 512-dim embeddings (§4.2); 40K BPE
    # types (Table 1).
    "paper": Config(
        f=512,
        enc_layers=((512, 3),) * 10 + ((768, 3),) * 3 + ((2048, 1),) * 2,
        dec_layers=((512, 3),) * 10 + ((768, 3),) * 3 + ((2048, 1),) * 2,
        src_vocab=40_000,
        tgt_vocab=40_000,
        max_len=1024,
        dropout=0.2,
    ),
    "gpu": Config(
        f=256,
        enc_layers=((256, 3),) * 8,
        dec_layers=((256, 3),) * 8,
        seq_len=32,
        n_train=200_000,
        steps=6000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


def glu(Y: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """§3.2: v([A B]) = A * sigmoid(B), halving the channels."""
    A, B = Y.chunk(2, dim)
    return A * torch.sigmoid(B)


class ConvBlock(nn.Module):
    """One conv + GLU block with a residual connection scaled by sqrt(0.5) (§3.2, §3.4)."""

    def __init__(self, d_in: int, d: int, k: int, causal: bool, dropout: float):
        super().__init__()
        self.causal, self.k = causal, k
        pad = k - 1 if causal else k // 2  # decoder: k-1 zeros on both sides
        self.conv = nn.Conv1d(d_in, 2 * d, k, padding=pad)  # Y = [A B] in R^{2d}
        self.res = nn.Linear(d_in, d) if d_in != d else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x):  # (B, T, d_in) -> (B, T, d), residual
        T = x.size(1)
        y = self.conv(self.drop(x).transpose(1, 2))  # (B, 2d, T + k - 1) when causal
        h = glu(y[..., :T])  # causal: drop k-1 that saw the future
        return h.transpose(1, 2), self.res(x)


class ConvS2S(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        f = cfg.f
        self.use_pos = cfg.positions
        self.w_src, self.p_src = nn.Embedding(cfg.src_vocab, f), nn.Embedding(cfg.max_len, f)
        self.w_tgt, self.p_tgt = nn.Embedding(cfg.tgt_vocab, f), nn.Embedding(cfg.max_len, f)
        self.enc_in = nn.Linear(f, cfg.enc_layers[0][0])
        self.dec_in = nn.Linear(f, cfg.dec_layers[0][0])
        dims = lambda layers: zip([layers[0][0]] + [d for d, _ in layers[:-1]], layers)
        self.encoder = nn.ModuleList(
            ConvBlock(a, d, k, False, cfg.dropout) for a, (d, k) in dims(cfg.enc_layers)
        )
        self.decoder = nn.ModuleList(
            ConvBlock(a, d, k, True, cfg.dropout) for a, (d, k) in dims(cfg.dec_layers)
        )
        self.W_d = nn.ModuleList(nn.Linear(d, f) for d, _ in cfg.dec_layers)  # d_i = W_d h_i + ...
        self.W_c = nn.ModuleList(nn.Linear(f, d) for d, _ in cfg.dec_layers)  # c_i to layer size
        self.enc_out = nn.Linear(cfg.enc_layers[-1][0], f)
        self.dec_out = nn.Linear(cfg.dec_layers[-1][0], f)
        self.generator = nn.Linear(f, cfg.tgt_vocab)
        self.drop = nn.Dropout(cfg.dropout)

    def embed(self, w, p, tokens):  # §3.1: e_j = w_j + p_j  (B, T, f)
        e = w(tokens)
        if self.use_pos:  # the ablation has no p_j
            e = e + p(torch.arange(tokens.size(1), device=tokens.device))
        return self.drop(e)

    def encode(self, src):
        e = self.embed(self.w_src, self.p_src, src)
        h = self.enc_in(e)
        for block in self.encoder:
            out, res = block(h)
            h = (out + res) * math.sqrt(0.5)  # §3.4: halve the variance of the sum
        return self.enc_out(h), e  # z^u (keys) and e (added to the values)

    def decode(self, tgt_in, z, e, return_attention=False):
        g = self.embed(self.w_tgt, self.p_tgt, tgt_in)  # (B, n, f)
        m = z.size(1)
        h, attn = self.dec_in(g), []
        for block, W_d, W_c in zip(self.decoder, self.W_d, self.W_c):
            out, res = block(h)  # h_i^l before the residual
            d = W_d(out) + g  # §3.3: d_i = W_d h_i + b_d + g_i
            a = torch.softmax(d @ z.transpose(1, 2), -1)  # a_ij over source positions  (B, n, m)
            c = a @ (z + e) * (m * math.sqrt(1 / m))  # sum_j a_ij (z_j + e_j), scaled §3.4
            out = (out + W_c(c)) * math.sqrt(0.5)  # c_i is added to h_i
            h = (out + res) * math.sqrt(0.5)
            attn.append(a)
        logits = self.generator(self.drop(self.dec_out(h)))  # (B, n, tgt_vocab)
        return (logits, attn) if return_attention else logits

    def forward(self, src, tgt_in):
        return self.decode(tgt_in, *self.encode(src))

    @torch.no_grad()
    def greedy(self, src, T: int):
        z, e = self.encode(src)
        ys = torch.full((src.size(0), 1), BOS, device=src.device)
        for _ in range(T):
            ys = torch.cat([ys, self.decode(ys, z, e)[:, -1].argmax(-1, keepdim=True)], 1)
        return ys[:, 1:]  # (B, T)


def build_model(cfg: Config) -> nn.Module:
    return ConvS2S(cfg)


def make_data(cfg: Config, n: int, g: torch.Generator):
    """Source: random symbols; target: the same symbols reversed, then EOS."""
    src = torch.randint(N_SPECIAL, N_SPECIAL + cfg.n_digits, (n, cfg.seq_len), generator=g)
    return src, torch.cat([src.flip(1), torch.full((n, 1), EOS)], 1)


def exact_match(model, src, tgt, device, amp) -> float:
    """Share of sequences whose greedy decoding equals the target, EOS included."""
    model.eval()
    with torch.autocast(**amp):
        pred = torch.cat(
            [
                model.greedy(src[i : i + 500].to(device), tgt.size(1)).cpu()
                for i in range(0, len(src), 500)
            ]
        )
    model.train()
    return (pred == tgt).all(1).float().mean().item()


def fit(cfg: Config, device: str, data) -> dict:
    """Train one model on the shared data; the metric at `evals` points along the way."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)  # the same batches for idea and ablation
    src, tgt, test_src, test_tgt = data
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    every, history, tokens, train_s = max(1, cfg.steps // cfg.evals), [], 0, 0.0
    model.train()
    for step in range(1, cfg.steps + 1):
        start = time.perf_counter()
        idx = torch.randint(cfg.n_train, (cfg.batch_size,), generator=g)
        x, y = src[idx].to(device), tgt[idx].to(device)
        y_in = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], 1)  # shifted right
        with torch.autocast(**amp):
            logits = model(x, y_in)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens += x.numel() + y.numel()
        train_s += time.perf_counter() - start
        if step % every == 0 or step == cfg.steps:
            history.append(exact_match(model, test_src, test_tgt, device, amp))
    return {
        "value": history[-1],
        "history": history,
        "final_loss": loss.item(),
        "params": sum(p.numel() for p in model.parameters()),
        "tokens": tokens,
        "train_s": train_s,
        "eval_every": every,
    }


def train(cfg: Config, device: str = "cpu") -> dict:
    start = time.perf_counter()
    g = torch.Generator().manual_seed(cfg.seed)
    src, tgt = make_data(cfg, cfg.n_train, g)
    test_src, test_tgt = make_data(cfg, cfg.n_test, g)
    seen = {tuple(s) for s in src.tolist()}
    keep = torch.tensor([tuple(s) not in seen for s in test_src.tolist()])
    data = src, tgt, test_src[keep], test_tgt[keep]  # held out: no source seen in training
    idea = fit(replace(cfg, positions=True), device, data)
    ablation = fit(replace(cfg, positions=False), device, data)
    gate = lambda v: v >= GATE[2]
    params, n = idea["params"], len(idea["history"])
    at = [min(cfg.steps, idea["eval_every"] * (i + 1)) for i in range(n)]
    return {
        "metric": GATE[0],
        "value": idea["value"],
        "ablation": {"name": "no position embeddings", "value": ablation["value"]},
        "conditions": {},
        "history": {
            "x": "step",
            "at": at,
            "idea": idea["history"],
            "ablation": ablation["history"],
        },
        "passed": gate(idea["value"]) and not gate(ablation["value"]),
        "seed": cfg.seed,
        "n_test": int(keep.sum()),
        "params": params,
        "final_loss": idea["final_loss"],
        "seconds": time.perf_counter() - start,
        "tokens_per_s": idea["tokens"] / idea["train_s"],
        "model_flops_per_s": 6 * params * idea["tokens"] / idea["train_s"],
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
