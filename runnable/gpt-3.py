"""GPT-3: a frozen language model that learns a new task from the examples in its prompt.

Paper: Language Models are Few-Shot Learners (Brown et al., 2020) https://arxiv.org/abs/2005.14165
GPT-2's pre-LN decoder-only Transformer, scaled to 175B parameters (Table 2.1) and evaluated with no
gradient updates: K solved demonstrations are placed in the context and the model continues the text
(§2, Fig. 2.1). The paper alternates dense and locally banded sparse attention layers; this file uses
dense causal attention in every layer (the sparsity pattern does not change the parameter count).
Tiny: plain LM pre-training on sequences "x1 y1 x2 y2 ... xK yK", each from a fresh random map f: X -> Y,
so no single map can be memorised. Evaluation uses held-out maps (a fifth of all maps, never trained on):
the frozen model reads K demonstrations and a query x_q, and its next token is compared with f(x_q).
Gate: few-shot accuracy (K = 4 demonstrations that include x_q) >= 0.90 and zero-shot (K = 0) <= chance + 0.10.
Run: kb run gpt-3   (or python runnable/gpt-3.py --preset tiny: a '-' in the name rules out -m)
"""

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("few-shot-accuracy", ">=", 0.90)
ZERO_SHOT_MARGIN = (
    0.10  # zero-shot accuracy must stay within this of chance (1 / n_y): part of `passed`
)


@dataclass
class Config:
    n_layer: int = 2  # 96 in GPT-3 175B
    d_model: int = 32  # 12288
    n_head: int = 2  # 96, d_head = d_model / n_head = 128 (16 here)
    vocab: int = 20  # 50257 BPE tokens; tiny: tokens 0..n_x-1 are inputs, n_x..n_x+n_y-1 outputs
    n_ctx: int = 16  # 2048
    dropout: float = 0.0
    init_std: float = (
        0.15  # 0.02 at GPT widths (d_model >= 768); near 1/sqrt(d_model) for the tiny width
    )
    n_x: int = 4  # input symbols of a task
    n_y: int = 16  # output symbols; chance = 1 / n_y; n_y ** n_x = 65,536 possible tasks
    K: int = 8  # (x, y) pairs per training sequence: 2K tokens
    k_eval: int = 4  # demonstrations in the few-shot prompts of the gate
    steps: int = 500
    batch_size: int = 64  # 3.2M tokens per batch for 175B (Table 2.1)
    lr: float = 3e-3  # 0.6e-4 for 175B
    warmup: int = 50
    weight_decay: float = 0.1  # Appendix B
    n_test: int = 2000  # held-out tasks
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # GPT-3 175B (Table 2.1): counts 174.6B (-0.2 % of 175.0B). GPT-3 Small would be n_layer=12,
    # d_model=768, n_head=12. An architecture only: its data would be text, not the tiny task.
    "paper": Config(
        n_layer=96,
        d_model=12288,
        n_head=96,
        vocab=50257,
        n_ctx=2048,
        K=1024,
        lr=0.6e-4,
        init_std=0.02,
        batch_size=1536,
        warmup=117,
    ),  # Appendix B: warm-up over 375M tokens
    "gpu": Config(
        n_layer=8,
        d_model=512,
        n_head=8,
        vocab=80,
        n_ctx=128,
        init_std=0.04,
        n_x=16,
        n_y=64,
        K=48,
        k_eval=16,
        steps=5000,
        batch_size=256,
        lr=6e-4,
        warmup=300,
        n_test=8000,
        amp_bf16=True,
    ),
}


def causal_attention(q, k, v, dropout: float = 0.0, training: bool = False):
    """softmax(q k^T / sqrt(d_head) + causal mask) v: position t sees positions <= t only."""
    T, d_head = q.size(-2), q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_head)  # (B, h, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    w = F.dropout(scores.masked_fill(~causal, float("-inf")).softmax(-1), dropout, training)
    return w @ v  # (B, h, T, d_head)


class Block(nn.Module):
    """§2.1 (as GPT-2): pre-LN, x + Attn(LN(x)) then x + FFN(LN(x)); d_ff = 4 d_model."""

    def __init__(self, d_model: int, n_head: int, dropout: float):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.ln_1, self.ln_2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.W_qkv, self.W_o = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.W_1, self.W_2 = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def attn(self, x):  # (B, T, d_model)
        B, T, D = x.shape
        q, k, v = (
            self.W_qkv(x).view(B, T, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        )  # (B, h, T, d_head)
        heads = causal_attention(q, k, v, self.dropout, self.training)
        return self.W_o(
            heads.transpose(1, 2).reshape(B, T, D)
        )  # concatenate heads, (B, T, d_model)

    def forward(self, x):  # (B, T, d_model)
        x = x + self.drop(self.attn(self.ln_1(x)))
        return x + self.drop(self.W_2(F.gelu(self.W_1(self.ln_2(x)))))


class GPT3(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.wte, self.wpe = (
            nn.Embedding(cfg.vocab, cfg.d_model),
            nn.Embedding(cfg.n_ctx, cfg.d_model),
        )  # learned positions
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(cfg.d_model, cfg.n_head, cfg.dropout) for _ in range(cfg.n_layer)
        )
        self.ln_f = nn.LayerNorm(cfg.d_model)  # final layer norm (GPT-2 §2.3)
        for name, p in self.named_parameters():  # GPT-2 init: N(0, 0.02), residual
            if p.dim() == 2:  # projections scaled by 1/sqrt(2 n_layer)
                scale = (
                    (2 * cfg.n_layer) ** -0.5
                    if name.endswith(("W_o.weight", "W_2.weight"))
                    else 1.0
                )
                nn.init.normal_(p, std=cfg.init_std * scale)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx):  # (B, T) token ids
        x = self.drop(
            self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        )  # (B, T, d_model)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T  # (B, T, vocab), tied to the token embedding


def build_model(cfg: Config) -> nn.Module:
    return GPT3(cfg)


def is_held_out(f):
    """A map is kept for evaluation when its outputs sum to a multiple of 5 (about a fifth of all maps)."""
    return f.sum(1) % 5 == 0  # (m,)


def sample_tasks(cfg: Config, m: int, g: torch.Generator, held_out: bool = False):
    """m random maps f: X -> Y, one row each (f[i, x] = y), all training maps or all held-out ones. (m, n_x)"""
    out, n = [], 0
    while n < m:
        f = torch.randint(cfg.n_y, (m, cfg.n_x), generator=g)
        out.append(f[is_held_out(f) == held_out])
        n += len(out[-1])
    return torch.cat(out)[:m]


def layout(cfg: Config, f, x):
    """Demonstrations as text: x1 y1 x2 y2 ... with y_i = f(x_i); y tokens come after the n_x x tokens."""
    y = f.gather(1, x) + cfg.n_x  # (m, K)
    return torch.stack([x, y], 2).flatten(1)  # (m, 2K)


def prompts(cfg: Config, f, K: int, query_seen: bool, g: torch.Generator):
    """K demonstrations of each task, then a query x_q; returns (m, 2K+1) prompts and answers (m,)."""
    m = f.size(0)
    x = torch.randint(cfg.n_x, (m, K), generator=g)  # (m, K)
    if query_seen:  # x_q is one of the demonstrated inputs
        x_q = x.gather(1, torch.randint(K, (m, 1), generator=g))
    else:  # x_q uniform over X
        x_q = torch.randint(cfg.n_x, (m, 1), generator=g)
    return torch.cat([layout(cfg, f, x), x_q], 1), f.gather(1, x_q).squeeze(1) + cfg.n_x


@torch.no_grad()
def evaluate(
    model, cfg: Config, f, K: int, query_seen: bool, g: torch.Generator, device="cpu"
) -> float:
    """§2 few-shot evaluation: condition the frozen model on the prompt, compare its next token with f(x_q)."""
    model.eval()
    prompt, answer = prompts(cfg, f, K, query_seen, g)
    amp = dict(
        device_type="cuda",
        dtype=torch.bfloat16,
        enabled=cfg.amp_bf16 and str(device).startswith("cuda"),
    )
    hits = 0
    for i in range(0, len(prompt), 1000):
        with torch.autocast(**amp):
            logits = model(prompt[i : i + 1000].to(device))[
                :, -1
            ]  # (b, vocab): the token after x_q
        hits += (
            (logits.argmax(-1).cpu() == answer[i : i + 1000]).sum().item()
        )  # argmax over the whole vocabulary
    return hits / len(prompt)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g, g_test = (
        torch.Generator().manual_seed(cfg.seed),
        torch.Generator().manual_seed(cfg.seed + 10_000),
    )
    model = build_model(cfg).to(device)
    decay, no_decay = (
        [p for p in model.parameters() if p.dim() == 2],
        [p for p in model.parameters() if p.dim() < 2],
    )
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )  # Appendix B
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(
            (s + 1) / cfg.warmup,
            0.1
            + 0.45
            * (1 + math.cos(math.pi * min(1.0, (s - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))),
        ),
    )  # warm-up, cosine to 10 %
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    start, tokens_seen = time.perf_counter(), 0
    model.train()
    for _ in range(cfg.steps):
        f = sample_tasks(cfg, cfg.batch_size, g)  # a fresh task for every sequence
        x = layout(cfg, f, torch.randint(cfg.n_x, (cfg.batch_size, cfg.K), generator=g)).to(
            device
        )  # (B, 2K)
        with torch.autocast(**amp):
            logits = model(x[:, :-1])  # (B, 2K-1, vocab)
        loss = F.cross_entropy(
            logits.float().flatten(0, 1), x[:, 1:].flatten()
        )  # plain LM loss on every token
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # Appendix B: clip the global norm at 1.0
        opt.step()
        sched.step()
        tokens_seen += x.numel()
    train_s = time.perf_counter() - start
    f_test = sample_tasks(
        cfg, cfg.n_test, g_test, held_out=True
    )  # maps that no training sequence used
    zero_shot = evaluate(model, cfg, f_test, 0, False, g_test, device)  # K = 0: the query alone
    few_shot = evaluate(model, cfg, f_test, cfg.k_eval, True, g_test, device)  # the gate
    by_k = {
        K: evaluate(model, cfg, f_test, K, False, g_test, device)  # uniform query: rises as K grows
        for K in (1, 2, 4, 8, cfg.K - 1)
        if K < cfg.K
    }
    # a perfect in-context learner: right when x_q was demonstrated, else a guess among n_y outputs
    ideal = {K: 1 - (1 - 1 / cfg.n_x) ** K * (1 - 1 / cfg.n_y) for K in by_k}
    chance = 1 / cfg.n_y
    passed = few_shot >= GATE[2] and zero_shot <= chance + ZERO_SHOT_MARGIN
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": few_shot,
        "passed": passed,
        "params": params,
        "zero_shot_accuracy": zero_shot,
        "chance": chance,
        "accuracy_by_k": by_k,
        "accuracy_by_k_ideal": ideal,
        "held_out_tasks": len(f_test.unique(dim=0)),
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
