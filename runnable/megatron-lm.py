"""Megatron-LM: intra-layer (tensor) model parallelism, simulated on one process.

Paper: Megatron-LM: Training Multi-Billion Parameter Language Models Using Model Parallelism (Shoeybi et al., 2019) https://arxiv.org/abs/1909.08053
Each GPT-2 layer is cut into k shards (§3, Fig. 3): in the MLP, A is split by columns so every shard
applies GeLU to its own slice, B by rows, and one all-reduce sums the partial outputs; self-attention
is split by heads (Q, K, V column-parallel, the output projection row-parallel). The embedding is
split along the vocabulary, and the cross-entropy is computed from the vocabulary shards without
gathering the logits. Here the k "GPUs" are a Python loop and every all-reduce is a sum.
Gate: a k = 2 sharded GPT reaches next-token accuracy >= 0.9 on the repeated half of held-out sequences.
Run: kb run megatron-lm
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("next-token-accuracy", ">=", 0.9)


@dataclass
class Config:
    n_layers: int = 2  # 72 in the 8.3B model (Table 1)
    h: int = 64  # hidden size (3072)
    n_heads: int = 4  # attention heads (32)
    k: int = 2  # model-parallel shards ("GPUs"); 8 for the 8.3B model
    vocab: int = 32  # 51,200 after padding GPT-2's 50,257 to a multiple of 1024 (§4)
    seq_len: int = 24  # 1024 in the paper; here a random half of 12 tokens, then its repeat
    dropout: float = 0.0  # 0.1 in the paper
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3  # 1.5e-4 with cosine decay in the paper
    n_test: int = 1000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        n_layers=72, h=3072, n_heads=32, k=8, vocab=51200, seq_len=1024, dropout=0.1
    ),  # 8.3B
    "gpu": Config(
        n_layers=12,
        h=768,
        n_heads=12,
        k=4,
        vocab=1024,
        seq_len=256,
        steps=3000,
        batch_size=64,
        lr=6e-4,
        amp_bf16=True,
    ),
}


class ParallelMLP(nn.Module):
    """§3, Eq. 3-4: Y_i = GeLU(X A_i) per shard (A column-parallel); Z = sum_i Y_i B_i (B row-parallel)."""

    def __init__(self, h: int, k: int):
        super().__init__()
        self.A = nn.ModuleList(nn.Linear(h, 4 * h // k) for _ in range(k))  # A = [A_1 .. A_k]
        self.B = nn.ModuleList(
            nn.Linear(4 * h // k, h, bias=False) for _ in range(k)
        )  # B = [B_1; ..; B_k]
        self.b_B = nn.Parameter(torch.zeros(h))  # B's bias is added once, after the all-reduce

    def forward(self, X):  # (B, T, h); operator f: identity here, all-reduce in backward
        partial = [
            B_i(F.gelu(A_i(X))) for A_i, B_i in zip(self.A, self.B)
        ]  # k x (B, T, h), no communication
        return torch.stack(partial).sum(0) + self.b_B  # operator g: the forward all-reduce


class ParallelAttention(nn.Module):
    """§3, Fig. 3b: each shard owns n_heads / k heads (its column blocks of W_q, W_k, W_v) and the matching
    row block of the output projection W_o; one all-reduce sums the shards' outputs."""

    def __init__(self, h: int, n_heads: int, k: int):
        super().__init__()
        self.heads_per_shard, self.d_k = n_heads // k, h // n_heads
        self.W_qkv = nn.ModuleList(nn.Linear(h, 3 * h // k) for _ in range(k))  # column-parallel
        self.W_o = nn.ModuleList(nn.Linear(h // k, h, bias=False) for _ in range(k))  # row-parallel
        self.b_o = nn.Parameter(torch.zeros(h))

    def forward(self, X):  # (B, T, h)
        B, T, _ = X.shape
        partial = []
        for W_qkv_i, W_o_i in zip(self.W_qkv, self.W_o):  # one iteration = one GPU
            q, k_, v = (
                W_qkv_i(X).view(B, T, 3, self.heads_per_shard, self.d_k).permute(2, 0, 3, 1, 4)
            )
            heads = F.scaled_dot_product_attention(q, k_, v, is_causal=True)  # (B, heads/k, T, d_k)
            partial.append(W_o_i(heads.transpose(1, 2).reshape(B, T, -1)))  # (B, T, h)
        return torch.stack(partial).sum(0) + self.b_o  # all-reduce


class Block(nn.Module):
    """GPT-2 layer: pre-LayerNorm, residual around attention and MLP."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(cfg.h), nn.LayerNorm(cfg.h)
        self.attn, self.mlp = (
            ParallelAttention(cfg.h, cfg.n_heads, cfg.k),
            ParallelMLP(cfg.h, cfg.k),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):  # (B, T, h)
        x = x + self.drop(self.attn(self.ln_1(x)))
        return x + self.drop(self.mlp(self.ln_2(x)))


class ParallelGPT(nn.Module):
    """§3 (last paragraphs): the input embedding E = [E_1, .., E_k] is split along the vocabulary; the output
    layer reuses it, giving logit shards X E_i^T that go straight into parallel_cross_entropy."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.k, self.V_shard = cfg.k, cfg.vocab // cfg.k
        self.E = nn.ParameterList(
            nn.Parameter(torch.randn(self.V_shard, cfg.h) * 0.02) for _ in range(cfg.k)
        )
        self.pos = nn.Parameter(
            torch.randn(cfg.seq_len, cfg.h) * 0.01
        )  # learned positions (1024 x h)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f, self.drop = nn.LayerNorm(cfg.h), nn.Dropout(cfg.dropout)

    def embed(self, tokens):  # (B, T) -> (B, T, h)
        out = 0
        for i, E_i in enumerate(self.E):  # shard i owns ids [i V/k, (i+1) V/k)
            local = tokens - i * self.V_shard
            mine = (local >= 0) & (local < self.V_shard)
            out = out + F.embedding(local.clamp(0, self.V_shard - 1), E_i) * mine[..., None]
        return out  # the sum over shards is the all-reduce

    def forward(self, tokens):  # (B, T) -> k x (B, T, V/k) logit shards
        x = self.drop(self.embed(tokens) + self.pos[: tokens.size(1)])
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return [x @ E_i.T for E_i in self.E]  # weight-tied output layer, never gathered


def parallel_cross_entropy(logit_shards, targets):
    """Cross-entropy from vocabulary shards, communicating only (B, T) scalars: the max, the sum of
    exponentials, and the target's logit (§3: fuse the output GEMM with the loss)."""
    V_shard = logit_shards[0].size(-1)
    m = (
        torch.stack([z.max(-1).values for z in logit_shards]).max(0).values.detach()
    )  # all-reduce max
    sum_exp = torch.stack([(z - m[..., None]).exp().sum(-1) for z in logit_shards]).sum(
        0
    )  # all-reduce sum
    target_logit = 0
    for i, z in enumerate(logit_shards):
        local = targets - i * V_shard
        mine = (local >= 0) & (local < V_shard)
        picked = z.gather(-1, local.clamp(0, V_shard - 1)[..., None])[..., 0]
        target_logit = target_logit + picked * mine  # all-reduce sum
    return (sum_exp.log() + m - target_logit).mean()


def build_model(cfg: Config) -> nn.Module:
    assert cfg.n_heads % cfg.k == 0 and cfg.vocab % cfg.k == 0 and (4 * cfg.h) % cfg.k == 0
    return ParallelGPT(cfg)


def make_batch(cfg: Config, n: int, g: torch.Generator):
    """A random first half, then the same tokens again: the second half is predictable only by looking back."""
    half = torch.randint(cfg.vocab, (n, cfg.seq_len // 2), generator=g)
    return torch.cat([half, half], 1)  # (n, seq_len)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g, g_test = (
        torch.Generator().manual_seed(cfg.seed),
        torch.Generator().manual_seed(cfg.seed + 10_000),
    )
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.01)
    warm = max(1, cfg.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, (cfg.steps - s) / (cfg.steps - warm))
    )
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    start, tokens_seen = time.perf_counter(), 0
    model.train()
    for _ in range(cfg.steps):
        x = make_batch(cfg, cfg.batch_size, g).to(device)
        with torch.autocast(**amp):
            shards = model(x[:, :-1])
        loss = parallel_cross_entropy([z.float() for z in shards], x[:, 1:])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens_seen += x.numel()
    train_s = time.perf_counter() - start
    model.eval()
    x = make_batch(cfg, cfg.n_test, g_test).to(device)  # held out: fresh random halves
    with torch.no_grad(), torch.autocast(**amp):
        pred = torch.cat([z.float() for z in model(x[:, :-1])], -1).argmax(
            -1
        )  # gather only to evaluate
    half = cfg.seq_len // 2
    value = (
        (pred[:, half - 1 :] == x[:, half:]).float().mean().item()
    )  # the predictable, repeated half
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": params,
        "final_loss": loss.item(),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": tokens_seen / train_s,
        "model_flops_per_s": 6 * params * tokens_seen / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
