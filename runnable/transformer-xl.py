"""Transformer-XL: segment-level recurrence with relative positional encodings.

Paper: Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context (Dai et al., 2019) https://arxiv.org/abs/1901.02860
A language model reads text in segments of length L. Each layer also attends over a memory: the hidden
states the layer saw for the previous segment, kept with a stop-gradient (§3.2). Because cached states come
from earlier absolute positions, attention scores use relative positions only (§3.3):
A_ij = q_i.k_j (a) + q_i.W_kR R_{i-j} (b) + u.k_j (c) + v.W_kR R_{i-j} (d), with learned biases u, v and
sinusoids R; (b)+(d) for all distances at once by the "relative shift" trick. Data: a stream of blocks of
length L = segment length; a block opens with a flag, and a COPY block repeats the previous block's words.
Gate: held-out next-token accuracy on copied words (their source lies in the previous segment) >= 0.9;
the same model without memory (mem_len=0) cannot see the source and stays near chance (1/16).
Run: kb run transformer-xl
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("copy-accuracy", ">=", 0.9)
RAND, COPY, N_SPECIAL = 0, 1, 2


@dataclass
class Config:
    d_model: int = 64
    n_head: int = 4
    d_inner: int = 128
    n_layer: int = 2
    vocab: int = N_SPECIAL + 16  # two flags + 16 words
    seg_len: int = 12  # L, also the block length of the generated stream
    mem_len: int = 12  # M, cached states per layer (0 = no recurrence)
    dropout: float = 0.0
    n_segs: int = 8  # segments per training stream (memory carried across them)
    steps: int = 80  # training streams
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 50
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # 12-layer enwik8 model: sizes from the authors' released script (the paper gives no layer sizes).
    "paper": Config(
        d_model=512,
        n_head=8,
        d_inner=2048,
        n_layer=12,
        vocab=204,
        seg_len=512,
        mem_len=512,
        dropout=0.1,
        batch_size=22,
        lr=2.5e-4,
    ),
    "gpu": Config(
        d_model=256,
        n_head=8,
        d_inner=1024,
        n_layer=4,
        vocab=N_SPECIAL + 64,
        seg_len=64,
        mem_len=64,
        n_segs=16,
        steps=3000,
        batch_size=64,
        lr=1e-3,
        warmup=300,
        amp_bf16=True,
    ),
}


def sinusoid(distances: torch.Tensor, d_model: int) -> torch.Tensor:
    """R: sinusoid encodings of the relative distances (no learned position parameters)."""
    inv_freq = 1.0 / 10000 ** (
        torch.arange(0, d_model, 2, device=distances.device).float() / d_model
    )
    angles = distances.float()[:, None] * inv_freq  # (K, d_model/2)
    return torch.cat([angles.sin(), angles.cos()], -1)  # (K, d_model)


def rel_shift(x: torch.Tensor) -> torch.Tensor:
    """x[..., i, k] scores distance K-1-k; returns y[..., i, j] for distance (K-Q+i) - j (valid for j <= K-Q+i).
    Pad a zero column, view the rows as a (K+1, Q) block, drop one row: each row moves left by Q-1-i."""
    *lead, Q, K = x.shape
    padded = torch.cat([x.new_zeros(*lead, Q, 1), x], -1)  # (..., Q, K+1)
    return padded.view(*lead, K + 1, Q)[..., 1:, :].reshape(*lead, Q, K)


class RelMultiHeadAttn(nn.Module):
    """§3.3: attention over [memory; segment] with the four relative-position terms (a)-(d)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.h, self.d_head = cfg.n_head, cfg.d_model // cfg.n_head
        self.W_q, self.W_kE, self.W_v = (
            nn.Linear(cfg.d_model, cfg.d_model, bias=False) for _ in range(3)
        )
        self.W_kR = nn.Linear(
            cfg.d_model, cfg.d_model, bias=False
        )  # keys for positions, apart from W_kE
        self.W_o = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def split(self, x):  # (B, T, d) -> (B, H, T, d_head)
        return x.view(x.size(0), -1, self.h, self.d_head).transpose(1, 2)

    def scores(self, h, mem, R, u, v):  # h (B, Q, d), mem (B, M, d), R (K, d)
        q, k = (
            self.split(self.W_q(h)),
            self.split(self.W_kE(torch.cat([mem, h], 1))),
        )  # K = M + Q keys
        r = self.W_kR(R).view(-1, self.h, self.d_head).transpose(0, 1)  # (H, K, d_head)
        AC = (q + u[:, None]) @ k.transpose(-2, -1)  # terms (a) + (c): (B, H, Q, K)
        BD = rel_shift(
            (q + v[:, None]) @ r.transpose(-2, -1)
        )  # terms (b) + (d), shifted to distance i - j
        return (AC + BD) / math.sqrt(self.d_head)

    def forward(self, h, mem, R, u, v, mask):
        val = self.split(self.W_v(torch.cat([mem, h], 1)))  # (B, H, K, d_head)
        attn = torch.softmax(self.scores(h, mem, R, u, v).masked_fill(~mask, float("-inf")), -1)
        return self.W_o((attn @ val).transpose(1, 2).reshape(h.size(0), h.size(1), -1))  # (B, Q, d)


class Layer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.attn = RelMultiHeadAttn(cfg)
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_inner),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.d_inner, cfg.d_model),
        )
        self.norm1, self.norm2, self.drop = (
            nn.LayerNorm(cfg.d_model),
            nn.LayerNorm(cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, h, mem, R, u, v, mask):  # post-LN, as in the Transformer
        h = self.norm1(h + self.drop(self.attn(h, mem, R, u, v, mask)))
        return self.norm2(h + self.drop(self.ff(h)))


class TransformerXL(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.d_model)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.n_layer))
        d_head = cfg.d_model // cfg.n_head
        self.u = nn.Parameter(torch.zeros(cfg.n_head, d_head))  # global content bias, term (c)
        self.v = nn.Parameter(torch.zeros(cfg.n_head, d_head))  # global position bias, term (d)
        self.out = nn.Linear(cfg.d_model, cfg.vocab)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mems=None):  # x (B, Q); mems: n_layer x (B, M, d)
        B, Q = x.shape
        h = self.drop(self.embed(x) * math.sqrt(self.cfg.d_model))
        if mems is None:
            mems = [h.new_zeros(B, 0, h.size(-1)) for _ in self.layers]
        M = mems[0].size(1)
        K = M + Q
        R = self.drop(
            sinusoid(torch.arange(K - 1, -1, -1, device=x.device), self.cfg.d_model)
        )  # distances K-1..0
        i, j = torch.arange(Q, device=x.device)[:, None], torch.arange(K, device=x.device)
        mask = j <= i + M  # query i sits at position M + i: causal
        new_mems = []
        for layer, mem in zip(self.layers, mems):
            # §3.2: cache this layer's input, stop-gradient, keep the last mem_len states
            new_mems.append(
                torch.cat([mem, h], 1)[:, -self.cfg.mem_len :].detach() if self.cfg.mem_len else mem
            )
            h = layer(h, mem, R, self.u, self.v, mask)
        return self.out(self.drop(h)), new_mems  # (B, Q, vocab)


def build_model(cfg: Config) -> nn.Module:
    return TransformerXL(cfg)


def make_stream(cfg: Config, B: int, n_blocks: int, g: torch.Generator):
    """Blocks of seg_len tokens: a flag (RAND or COPY, each half the time) and seg_len - 1 words; a COPY block
    repeats the previous block's words. Returns tokens (B, n_blocks * L) and where a copied word stands."""
    L, n_words = cfg.seg_len, cfg.vocab - N_SPECIAL
    words = N_SPECIAL + torch.randint(n_words, (B, n_blocks, L - 1), generator=g)
    is_copy = torch.rand(B, n_blocks, generator=g) < 0.5
    is_copy[:, 0] = False
    for b in range(1, n_blocks):
        words[:, b] = torch.where(is_copy[:, b, None], words[:, b - 1], words[:, b])
    flags = torch.where(is_copy, COPY, RAND)[..., None]
    tokens = torch.cat([flags, words], -1)  # (B, n_blocks, L)
    copied = torch.cat(
        [torch.zeros_like(is_copy[..., None]), is_copy[..., None].expand(-1, -1, L - 1)], -1
    )
    return tokens.flatten(1), copied.flatten(1)


def run_stream(model, tokens, copied, cfg, device, amp):
    """Feed a stream segment by segment with memory; loss on every next token, accuracy on copied words."""
    mems, loss, hits, count = None, 0.0, 0, 0
    for s in range(0, tokens.size(1) - 1, cfg.seg_len):
        x = tokens[:, s : s + cfg.seg_len].to(device)
        y, c = (
            tokens[:, s + 1 : s + 1 + cfg.seg_len].to(device),
            copied[:, s + 1 : s + 1 + cfg.seg_len].to(device),
        )
        x = x[:, : y.size(1)]
        with torch.autocast(**amp):
            logits, mems = model(x, mems if cfg.mem_len else None)
        loss = loss + F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        hits += (logits.argmax(-1) == y)[c].sum().item()
        count += c.sum().item()
    return loss / math.ceil((tokens.size(1) - 1) / cfg.seg_len), hits / max(count, 1)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / cfg.warmup))
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    start, tokens = time.perf_counter(), 0
    for _step in range(cfg.steps):
        model.train()
        stream, copied = make_stream(cfg, cfg.batch_size, cfg.n_segs, g)
        loss, _ = run_stream(
            model, stream, copied, cfg, device, amp
        )  # backprop through all segments;
        opt.zero_grad()  # the memory itself is detached
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        sched.step()
        tokens += stream.numel()
    train_s = time.perf_counter() - start
    model.eval()
    test, test_copied = make_stream(
        cfg, 200, cfg.n_segs, torch.Generator().manual_seed(cfg.seed + 10_000)
    )
    with torch.no_grad():
        _, value = run_stream(model, test, test_copied, cfg, device, amp)  # held-out streams
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": params,
        "chance": 1 / (cfg.vocab - N_SPECIAL),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": tokens / train_s,
        "model_flops_per_s": 6 * params * tokens / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
