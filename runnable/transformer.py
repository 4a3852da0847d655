"""Attention Is All You Need (the Transformer).

Paper: Attention Is All You Need (Vaswani et al., 2017) https://arxiv.org/abs/1706.03762
An encoder-decoder built only from attention: scaled dot-product attention (Eq. 1) in h parallel
heads (Multi-Head Attention, §3.2.2), position-wise feed-forward layers (Eq. 2), sinusoidal
positional encodings (§3.5), residual + LayerNorm around every sub-layer (post-LN, §3.1), a causal
mask in the decoder's self-attention, label smoothing 0.1 (§5.4) and the warm-up schedule (Eq. 3).
Attention alone ignores order (§3.5): without positional encodings the encoder sees a bag of
digits. Tiny task: reverse held-out digit sequences; the same model without positional encoding
(same data, steps and seed) is the ablation that must fail the gate.
Run: python -m runnable.transformer --preset tiny
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("exact-match", ">=", 0.95)
PAD, BOS, EOS, N_SPECIAL = 0, 1, 2, 3  # digits are tokens 3 .. 3 + n_digits - 1


@dataclass
class Config:
    d_model: int = 64
    h: int = 4  # heads; d_k = d_v = d_model / h
    d_ff: int = 128
    N: int = 2  # layers in the encoder and in the decoder (6 in the paper)
    vocab: int = N_SPECIAL + 10  # shared source/target vocabulary (37000 BPE tokens in the paper)
    tie_embeddings: bool = True  # §3.4: one matrix for both embeddings and the pre-softmax layer
    positional_encoding: bool = True  # §3.5; False is the ablation
    dropout: float = 0.0  # P_drop (0.1 in the paper); the tiny task does not need it
    label_smoothing: float = 0.1  # eps_ls, §5.4
    seq_len: int = 8  # digits per source sequence
    n_train: int = 10000
    n_test: int = 1000
    steps: int = 350
    evals: int = 5  # evaluation points for the history chart
    batch_size: int = 64
    warmup: int = 200  # Eq. 3 (4000 in the paper)
    lr_scale: float = 1.0  # multiplies Eq. 3
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # "paper" is Transformer (big), whose count matches Table 3 (213M). With the stated shared
    # vocabulary of about 37000 tokens, "base" counts 63.1M where Table 3 says 65M (-2.9 %).
    "paper": Config(
        d_model=1024, h=16, d_ff=4096, N=6, vocab=37000, dropout=0.3, warmup=4000, steps=500
    ),
    "base": Config(
        d_model=512, h=8, d_ff=2048, N=6, vocab=37000, dropout=0.1, warmup=4000, steps=500
    ),
    "gpu": Config(
        d_model=256,
        h=8,
        d_ff=1024,
        N=4,
        vocab=N_SPECIAL + 10,
        seq_len=32,
        dropout=0.1,
        n_train=200000,
        steps=6000,
        batch_size=256,
        warmup=1000,
        amp_bf16=True,
    ),
}


def attention(Q, K, V, mask=None):
    """Eq. 1: softmax(Q K^T / sqrt(d_k)) V. mask: True where attending is allowed."""
    d_k = Q.size(-1)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(d_k)  # (B, h, T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ V  # (B, h, T_q, d_v)


class MultiHeadAttention(nn.Module):
    """§3.2.2: Concat(head_1..head_h) W_o, head_i = Attention(Q W_q^i, K W_k^i, V W_v^i)."""

    def __init__(self, d_model: int, h: int):
        super().__init__()
        self.h, self.d_k = h, d_model // h
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, q, k, v, mask=None):  # (B, T_q, d), (B, T_k, d) x 2
        B = q.size(0)
        split = lambda x: x.view(B, -1, self.h, self.d_k).transpose(1, 2)  # (B, h, T, d_k)
        heads = attention(split(self.W_q(q)), split(self.W_k(k)), split(self.W_v(v)), mask)
        return self.W_o(heads.transpose(1, 2).reshape(B, -1, self.h * self.d_k))  # (B, T_q, d)


class FeedForward(nn.Module):
    """Eq. 2: FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, applied to each position separately."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.W_1, self.W_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.W_2(torch.relu(self.W_1(x)))


class EncoderLayer(nn.Module):
    """§3.1: two sub-layers, each LayerNorm(x + Dropout(Sublayer(x))) (post-LN)."""

    def __init__(self, d_model, h, d_ff, dropout):
        super().__init__()
        self.self_attn, self.ffn = MultiHeadAttention(d_model, h), FeedForward(d_model, d_ff)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask=None):  # (B, T, d_model)
        x = self.norm1(x + self.drop(self.self_attn(x, x, x, mask)))
        return self.norm2(x + self.drop(self.ffn(x)))


class DecoderLayer(nn.Module):
    """§3.1: masked self-attention, attention over the encoder output, FFN; each post-LN."""

    def __init__(self, d_model, h, d_ff, dropout):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, h)
        self.cross_attn = MultiHeadAttention(d_model, h)
        self.ffn, self.drop = FeedForward(d_model, d_ff), nn.Dropout(dropout)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))

    def forward(self, y, memory, causal, src_mask=None):  # (B, T_y, d), (B, T_x, d)
        y = self.norm1(y + self.drop(self.self_attn(y, y, y, causal)))
        y = self.norm2(y + self.drop(self.cross_attn(y, memory, memory, src_mask)))
        return self.norm3(y + self.drop(self.ffn(y)))


def positional_encoding(T: int, d_model: int) -> torch.Tensor:
    """§3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(...)."""
    pos = torch.arange(T, dtype=torch.float32)[:, None]  # (T, 1)
    div = torch.pow(10000.0, torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.zeros(T, d_model)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos / div), torch.cos(pos / div)
    return pe  # (T, d_model)


class Transformer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        d, self.d_model, self.use_pe = cfg.d_model, cfg.d_model, cfg.positional_encoding
        self.src_embed = nn.Embedding(cfg.vocab, d)
        self.tgt_embed = self.src_embed if cfg.tie_embeddings else nn.Embedding(cfg.vocab, d)
        layers = lambda Layer: nn.ModuleList(
            Layer(d, cfg.h, cfg.d_ff, cfg.dropout) for _ in range(cfg.N)
        )
        self.encoder, self.decoder = layers(EncoderLayer), layers(DecoderLayer)
        self.generator = nn.Linear(d, cfg.vocab, bias=False)  # pre-softmax linear transformation
        if cfg.tie_embeddings:
            self.generator.weight = self.src_embed.weight  # §3.4: shared weight matrix
        nn.init.normal_(self.src_embed.weight, std=d**-0.5)
        self.drop = nn.Dropout(cfg.dropout)

    def embed(self, emb, tokens):  # (B, T) -> (B, T, d_model)
        x = emb(tokens) * math.sqrt(self.d_model)  # §3.4: times sqrt(d_model)
        if self.use_pe:  # §3.5: added to the embeddings
            x = x + positional_encoding(tokens.size(1), self.d_model).to(tokens.device)
        return self.drop(x)

    def encode(self, src):
        x = self.embed(self.src_embed, src)
        for layer in self.encoder:
            x = layer(x)
        return x  # (B, T_x, d_model)

    def decode(self, tgt_in, memory):
        T = tgt_in.size(1)
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).tril()  # i sees <= i
        y = self.embed(self.tgt_embed, tgt_in)
        for layer in self.decoder:
            y = layer(y, memory, causal)
        return self.generator(y)  # (B, T_y, vocab) logits

    def forward(self, src, tgt_in):
        return self.decode(tgt_in, self.encode(src))

    @torch.no_grad()
    def greedy(self, src, T: int):
        memory, ys = self.encode(src), torch.full((src.size(0), 1), BOS, device=src.device)
        for _ in range(T):
            ys = torch.cat([ys, self.decode(ys, memory)[:, -1].argmax(-1, keepdim=True)], 1)
        return ys[:, 1:]  # (B, T)


def build_model(cfg: Config) -> nn.Module:
    return Transformer(cfg)


def make_data(cfg: Config, n: int, g: torch.Generator):
    """Source: random digits; target: the same digits reversed, then EOS."""
    src = torch.randint(N_SPECIAL, cfg.vocab, (n, cfg.seq_len), generator=g)
    tgt = torch.cat([src.flip(1), torch.full((n, 1), EOS)], 1)  # (n, T + 1)
    return src, tgt


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
    g = torch.Generator().manual_seed(cfg.seed)  # same batches for idea and ablation
    src, tgt, test_src, test_tgt = data
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)  # §5.3
    rate = lambda s: (
        cfg.lr_scale * cfg.d_model**-0.5 * min((s + 1) ** -0.5, (s + 1) * cfg.warmup**-1.5)
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)  # Eq. 3
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    every = max(1, cfg.steps // cfg.evals)
    history, tokens, train_s = [], 0, 0.0
    model.train()
    for step in range(1, cfg.steps + 1):
        start = time.perf_counter()
        idx = torch.randint(cfg.n_train, (cfg.batch_size,), generator=g)
        x, y = src[idx].to(device), tgt[idx].to(device)
        y_in = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], 1)  # shifted right
        with torch.autocast(**amp):
            logits = model(x, y_in)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), y.flatten(), label_smoothing=cfg.label_smoothing
        )
        opt.zero_grad()
        loss.backward()
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
    data = src, tgt, test_src[keep], test_tgt[keep]  # held out: unseen in training
    idea = fit(cfg, device, data)
    ablation = fit(replace(cfg, positional_encoding=False), device, data)
    gate = lambda v: v >= GATE[2]
    params, n = idea["params"], len(idea["history"])
    at = [min(cfg.steps, idea["eval_every"] * (i + 1)) for i in range(n)]
    return {
        "metric": GATE[0],
        "value": idea["value"],
        "ablation": {"name": "no positional encoding", "value": ablation["value"]},
        "conditions": {},
        "history": {
            "x": "step",
            "at": at,
            "idea": idea["history"],
            "ablation": ablation["history"],
        },
        "passed": gate(idea["value"]) and not gate(ablation["value"]),
        "seed": cfg.seed,
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
