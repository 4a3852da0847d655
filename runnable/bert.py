"""BERT: pre-training a deep bidirectional Transformer encoder.

Paper: BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding (Devlin et al., 2019) https://arxiv.org/abs/1810.04805
Input = token + segment + learned position embeddings of "[CLS] A [SEP] B [SEP]" (§3, Fig. 2), a
post-LN Transformer encoder with GELU, and two pre-training tasks (§3.1): the masked LM (15 % of
tokens chosen; 80 % -> [MASK], 10 % -> random token, 10 % unchanged) and next-sentence prediction
from the pooled [CLS] vector (B follows A half of the time). Tiny corpus: "sentences" are
arithmetic progressions mod n_words; the real next sentence continues the progression.
Gate: margin = min(mlm_accuracy - 1/n_words, nsp_accuracy - 0.5) on held-out pairs. The ablation is
the same model with a left-to-right attention mask (OpenAI GPT's, §1 and Table 5's "LTR"): each
token sees only what precedes it, so [CLS] sees none of the pair and the first words of a sentence
lose the context that would give them away.
Run: python -m runnable.bert --preset tiny
(data parallel: torchrun --nproc_per_node=N -m runnable.bert --preset gpu --device cuda)
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, replace

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

GATE = ("min-margin-over-chance", ">=", 0.35)
PAD, CLS, SEP, MASK, N_SPECIAL = 0, 1, 2, 3, 4  # words are tokens 4 .. 4 + n_words - 1


@dataclass
class Config:
    L: int = 2  # Transformer blocks (12 in BERT-base)
    H: int = 64  # hidden size (768)
    A: int = 4  # attention heads (12)
    d_ff: int = 256  # feed-forward size, 4H
    vocab: int = N_SPECIAL + 20  # WordPiece vocabulary of 30522 in the paper
    max_pos: int = 16  # learned positions (512)
    n_segments: int = 2
    bidirectional: bool = True  # False: the left-to-right ablation (a causal attention mask)
    dropout: float = 0.0  # 0.1 in the paper
    sent_len: int = 6  # words per "sentence"
    steps: int = 600
    evals: int = 5  # evaluation points for the history chart
    batch_size: int = 96
    lr: float = 4e-3  # 1e-4 with warm-up in the paper
    n_test: int = 2000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        L=12, H=768, A=12, d_ff=3072, vocab=30522, max_pos=512, dropout=0.1, steps=600
    ),  # BERT-base
    "large": Config(
        L=24, H=1024, A=16, d_ff=4096, vocab=30522, max_pos=512, dropout=0.1, steps=600
    ),  # BERT-large
    "gpu": Config(
        L=6,
        H=384,
        A=6,
        d_ff=1536,
        vocab=N_SPECIAL + 200,
        max_pos=128,
        sent_len=60,
        dropout=0.1,
        steps=4000,
        batch_size=256,
        lr=5e-4,
        amp_bf16=True,
    ),
}


class EncoderLayer(nn.Module):
    """One Transformer block (Vaswani et al. §3.1) with GELU: post-LN around attention and FFN."""

    def __init__(self, H: int, A: int, d_ff: int, dropout: float):
        super().__init__()
        self.A, self.dropout = A, dropout
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(H, H) for _ in range(4))
        self.W_1, self.W_2 = nn.Linear(H, d_ff), nn.Linear(d_ff, H)
        self.norm1, self.norm2, self.drop = nn.LayerNorm(H), nn.LayerNorm(H), nn.Dropout(dropout)

    def forward(self, x, pad_mask=None, causal=False):  # (B, T, H); pad_mask True = token
        B, T, H = x.shape
        split = lambda t: t.view(B, T, self.A, H // self.A).transpose(1, 2)  # (B, A, T, H/A)
        mask = None if pad_mask is None else pad_mask[:, None, None, :]  # (B, 1, 1, T)
        if causal:  # the ablation: left context only
            tril = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            mask = tril if mask is None else mask & tril
        heads = F.scaled_dot_product_attention(
            split(self.W_q(x)),
            split(self.W_k(x)),
            split(self.W_v(x)),
            mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = self.norm1(x + self.drop(self.W_o(heads.transpose(1, 2).reshape(B, T, H))))
        return self.norm2(x + self.drop(self.W_2(F.gelu(self.W_1(x)))))  # §3: GELU activation


class BERT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        H, self.causal = cfg.H, not cfg.bidirectional
        self.tok, self.pos = nn.Embedding(cfg.vocab, H), nn.Embedding(cfg.max_pos, H)
        self.seg = nn.Embedding(cfg.n_segments, H)
        self.emb_norm, self.drop = nn.LayerNorm(H), nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(H, cfg.A, cfg.d_ff, cfg.dropout) for _ in range(cfg.L)
        )
        self.pooler = nn.Linear(H, H)  # tanh(W h_[CLS]): "C" of Fig. 1
        self.nsp = nn.Linear(H, 2)  # IsNext / NotNext
        self.mlm_transform, self.mlm_norm = nn.Linear(H, H), nn.LayerNorm(H)
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab))  # decoder = the token embeddings
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens, segments):  # (B, T), (B, T)
        pos = torch.arange(tokens.size(1), device=tokens.device)
        x = self.tok(tokens) + self.seg(segments) + self.pos(pos)  # Fig. 2
        x = self.drop(self.emb_norm(x))
        for layer in self.layers:
            x = layer(x, tokens != PAD, self.causal)
        C = torch.tanh(self.pooler(x[:, 0]))  # (B, H)
        h = self.mlm_norm(F.gelu(self.mlm_transform(x)))  # (B, T, H)
        return h @ self.tok.weight.T + self.mlm_bias, self.nsp(C)  # (B, T, vocab), (B, 2)


def build_model(cfg: Config) -> nn.Module:
    return BERT(cfg)


def make_batch(cfg: Config, n: int, g: torch.Generator):
    """Pairs of progressions mod n_words; B continues A with prob. 0.5 (IsNext), else random."""
    n_words, k, T = cfg.vocab - N_SPECIAL, torch.arange(2 * cfg.sent_len), cfg.sent_len
    a, d = torch.randint(n_words, (n, 1), generator=g), torch.randint(1, 4, (n, 1), generator=g)
    is_next = torch.rand(n, generator=g) < 0.5
    a2, d2 = torch.randint(n_words, (n, 1), generator=g), torch.randint(1, 4, (n, 1), generator=g)
    fake = ((a2 - a - T * d) % n_words == 0) & (d2 == d)  # a random B that continues A
    a2 = torch.where(fake, a2 + 1, a2)
    A_ = (a + k[:T] * d) % n_words + N_SPECIAL
    B_ = torch.where(is_next[:, None], a + k[T:] * d, a2 + k[:T] * d2) % n_words + N_SPECIAL
    col = lambda v: torch.full((n, 1), v)
    tokens = torch.cat([col(CLS), A_, col(SEP), B_, col(SEP)], 1)  # (n, 2 * sent_len + 3)
    segments = torch.cat([torch.zeros(n, T + 2), torch.ones(n, T + 1)], 1).long()
    # §3.1 Task #1: choose 15 % of the word positions; 80 % -> [MASK], 10 % -> random, 10 % kept.
    chosen = (torch.rand(tokens.shape, generator=g) < 0.15) & (tokens >= N_SPECIAL)
    r = torch.rand(tokens.shape, generator=g)
    random_words = torch.randint(N_SPECIAL, cfg.vocab, tokens.shape, generator=g)
    inputs = torch.where(chosen & (r < 0.8), MASK, tokens)
    inputs = torch.where(chosen & (r >= 0.8) & (r < 0.9), random_words, inputs)
    labels = torch.where(chosen, tokens, -100)  # loss only on the chosen positions
    return inputs, segments, labels, is_next.long()


def setup_ddp(device: str):
    """Under torchrun (WORLD_SIZE > 1) join the process group: returns (rank, world, device)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def accuracies(cfg, model, test, rank, world, device, amp):
    """Held-out (MLM accuracy, NSP accuracy); each rank scores its share, the counts are summed."""
    inputs, segments, labels, is_next = (t[rank::world].to(device) for t in test)
    model.eval()
    with torch.no_grad(), torch.autocast(**amp):
        mlm_logits, nsp_logits = model(inputs, segments)
    model.train()
    chosen = labels != -100
    counts = torch.tensor(
        [
            (mlm_logits.argmax(-1)[chosen] == labels[chosen]).sum().item(),
            chosen.sum().item(),
            (nsp_logits.argmax(-1) == is_next).sum().item(),
            len(is_next),
        ],
        dtype=torch.float64,
        device=device,
    )
    if world > 1:
        dist.all_reduce(counts)  # sum hits and counts over the ranks
    return (counts[0] / counts[1]).item(), (counts[2] / counts[3]).item()


def fit(cfg: Config, device: str, test, rank: int, world: int) -> dict:
    """Pre-train one model on both tasks; every rank draws the same batches and keeps its share."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    net = DDP(model) if world > 1 else model  # DDP averages the gradients
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    warm = max(1, cfg.steps // 10)  # linear warm-up, linear decay (§A.2)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, (cfg.steps - s) / (cfg.steps - warm))
    )
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    chance = 1 / (cfg.vocab - N_SPECIAL)
    every, history, tokens, train_s = max(1, cfg.steps // cfg.evals), [], 0, 0.0
    for step in range(1, cfg.steps + 1):
        start = time.perf_counter()
        inputs, segments, labels, is_next = (
            t[rank::world].to(device) for t in make_batch(cfg, cfg.batch_size, g)
        )
        with torch.autocast(**amp):
            mlm_logits, nsp_logits = net(inputs, segments)
        loss = F.cross_entropy(
            mlm_logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100
        ) + F.cross_entropy(nsp_logits.float(), is_next)
        opt.zero_grad()  # the sum of the two losses
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens += inputs.numel() * world
        train_s += time.perf_counter() - start
        if step % every == 0 or step == cfg.steps:
            mlm, nsp = accuracies(cfg, model, test, rank, world, device, amp)
            history.append(min(mlm - chance, nsp - 0.5))
    params = sum(p.numel() for p in model.parameters())
    return {
        "model": model,
        "value": history[-1],
        "history": history,
        "mlm_accuracy": mlm,
        "mlm_chance": chance,
        "nsp_accuracy": nsp,
        "params": params,
        "eval_every": every,
        "final_loss": loss.item(),
        "tokens": tokens,
        "train_s": train_s,
    }


def train(cfg: Config, device: str = "cpu") -> dict:
    start = time.perf_counter()
    rank, world, device = setup_ddp(device)
    test = make_batch(cfg, cfg.n_test, torch.Generator().manual_seed(cfg.seed + 10_000))  # held out
    idea = fit(replace(cfg, bidirectional=True), device, test, rank, world)
    ablation = fit(replace(cfg, bidirectional=False), device, test, rank, world)
    if world > 1 and os.environ.get("KB_DDP_CHECKSUM"):  # the DDP test compares the ranks
        weights = [p for r in (idea, ablation) for p in r["model"].parameters()]
        digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in weights))
        print(f"ddp-params rank={rank} sha256={digest.hexdigest()}", file=sys.stderr, flush=True)
    gate = lambda v: v >= GATE[2]
    at = [min(cfg.steps, idea["eval_every"] * (i + 1)) for i in range(len(idea["history"]))]
    params, chance = idea["params"], idea["mlm_chance"]
    conditions = {
        "masked LM beats chance": gate(idea["mlm_accuracy"] - chance),
        "next sentence beats chance": gate(idea["nsp_accuracy"] - 0.5),
    }
    return {
        "metric": GATE[0],
        "value": idea["value"],
        "ablation": {
            "name": "left-to-right context only",
            "value": ablation["value"],
            "mlm_accuracy": ablation["mlm_accuracy"],
            "nsp_accuracy": ablation["nsp_accuracy"],
        },
        "conditions": conditions,
        "history": {
            "x": "step",
            "at": at,
            "idea": idea["history"],
            "ablation": ablation["history"],
        },
        "passed": gate(idea["value"]) and not gate(ablation["value"]) and all(conditions.values()),
        "seed": cfg.seed,
        "mlm_accuracy": idea["mlm_accuracy"],
        "mlm_chance": chance,
        "nsp_accuracy": idea["nsp_accuracy"],
        "params": params,
        "final_loss": idea["final_loss"],
        "seconds": time.perf_counter() - start,
        "tokens_per_s": idea["tokens"] / idea["train_s"],
        "model_flops_per_s": 6 * params * idea["tokens"] / idea["train_s"],
        "world_size": world,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
