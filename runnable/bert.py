"""BERT: pre-training a deep bidirectional Transformer encoder.

Paper: BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding (Devlin et al., 2019) https://arxiv.org/abs/1810.04805
Input = token + segment + learned position embeddings of "[CLS] A [SEP] B [SEP]" (§3, Fig. 2), a
post-LN Transformer encoder with GELU, and two pre-training tasks (§3.1): the masked LM (15 % of
tokens chosen; 80 % -> [MASK], 10 % -> random token, 10 % unchanged) and next-sentence prediction
from the pooled [CLS] vector (B follows A half of the time). Tiny corpus: "sentences" are
arithmetic progressions mod n_words; the real next sentence continues the progression.
Gate: margin = min(mlm_accuracy - 1/n_words, nsp_accuracy - 0.5) >= 0.35 on held-out pairs, i.e. the
masked-LM accuracy is at least 35 points above chance AND next-sentence accuracy is >= 0.85.
Run: python -m runnable.bert --preset tiny   (data parallel: torchrun --nproc_per_node=N -m runnable.bert --preset gpu --device cuda)
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, fields, replace

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

GATE = ("min-margin-over-chance", ">=", 0.35)
PAD, CLS, SEP, MASK, N_SPECIAL = 0, 1, 2, 3, 4  # words are tokens 4 .. 4 + n_words - 1


@dataclass
class Config:
    L: int = 2                  # Transformer blocks (12 in BERT-base)
    H: int = 64                 # hidden size (768)
    A: int = 4                  # attention heads (12)
    d_ff: int = 256             # feed-forward size, 4H
    vocab: int = N_SPECIAL + 20  # WordPiece vocabulary of 30522 in the paper
    max_pos: int = 16           # learned positions (512)
    n_segments: int = 2
    dropout: float = 0.0        # 0.1 in the paper
    sent_len: int = 6           # words per "sentence"
    steps: int = 450
    batch_size: int = 96
    lr: float = 2e-3            # 1e-4 with warm-up in the paper
    n_test: int = 2000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(L=12, H=768, A=12, d_ff=3072, vocab=30522, max_pos=512, dropout=0.1, steps=600),  # BERT-base
    "large": Config(L=24, H=1024, A=16, d_ff=4096, vocab=30522, max_pos=512, dropout=0.1, steps=600),  # BERT-large
    "gpu": Config(L=6, H=384, A=6, d_ff=1536, vocab=N_SPECIAL + 200, max_pos=128, sent_len=60, dropout=0.1,
                  steps=4000, batch_size=256, lr=5e-4, amp_bf16=True),
}


class EncoderLayer(nn.Module):
    """One Transformer block (Vaswani et al. §3.1) with GELU: post-LN around attention and FFN."""

    def __init__(self, H: int, A: int, d_ff: int, dropout: float):
        super().__init__()
        self.A, self.dropout = A, dropout
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(H, H) for _ in range(4))
        self.W_1, self.W_2 = nn.Linear(H, d_ff), nn.Linear(d_ff, H)
        self.norm1, self.norm2, self.drop = nn.LayerNorm(H), nn.LayerNorm(H), nn.Dropout(dropout)

    def forward(self, x, pad_mask=None):                       # (B, T, H); pad_mask (B, T) True at real tokens
        B, T, H = x.shape
        split = lambda t: t.view(B, T, self.A, H // self.A).transpose(1, 2)  # (B, A, T, H/A)
        mask = None if pad_mask is None else pad_mask[:, None, None, :]
        heads = F.scaled_dot_product_attention(split(self.W_q(x)), split(self.W_k(x)), split(self.W_v(x)), mask,
                                               dropout_p=self.dropout if self.training else 0.0)
        x = self.norm1(x + self.drop(self.W_o(heads.transpose(1, 2).reshape(B, T, H))))
        return self.norm2(x + self.drop(self.W_2(F.gelu(self.W_1(x)))))  # §3: GELU activation


class BERT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        H = cfg.H
        self.tok, self.pos, self.seg = nn.Embedding(cfg.vocab, H), nn.Embedding(cfg.max_pos, H), \
            nn.Embedding(cfg.n_segments, H)
        self.emb_norm, self.drop = nn.LayerNorm(H), nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(H, cfg.A, cfg.d_ff, cfg.dropout) for _ in range(cfg.L))
        self.pooler = nn.Linear(H, H)                          # tanh(W h_[CLS]): the "C" vector of Fig. 1
        self.nsp = nn.Linear(H, 2)                             # IsNext / NotNext
        self.mlm_transform, self.mlm_norm = nn.Linear(H, H), nn.LayerNorm(H)
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab))  # the decoder reuses the token embeddings
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens, segments):                       # (B, T), (B, T)
        pos = torch.arange(tokens.size(1), device=tokens.device)
        x = self.drop(self.emb_norm(self.tok(tokens) + self.seg(segments) + self.pos(pos)))  # Fig. 2
        for layer in self.layers:
            x = layer(x, tokens != PAD)
        C = torch.tanh(self.pooler(x[:, 0]))                   # (B, H)
        h = self.mlm_norm(F.gelu(self.mlm_transform(x)))       # (B, T, H)
        return h @ self.tok.weight.T + self.mlm_bias, self.nsp(C)  # (B, T, vocab), (B, 2)


def build_model(cfg: Config) -> nn.Module:
    return BERT(cfg)


def make_batch(cfg: Config, n: int, g: torch.Generator):
    """Pairs of progressions mod n_words; B continues A with prob. 0.5 (IsNext), else a random progression."""
    n_words, k = cfg.vocab - N_SPECIAL, torch.arange(2 * cfg.sent_len)
    a, d = torch.randint(n_words, (n, 1), generator=g), torch.randint(1, 4, (n, 1), generator=g)
    is_next = torch.rand(n, generator=g) < 0.5
    a2, d2 = torch.randint(n_words, (n, 1), generator=g), torch.randint(1, 4, (n, 1), generator=g)
    fake = ((a2 - a - cfg.sent_len * d) % n_words == 0) & (d2 == d)  # a random B that happens to continue A
    a2 = torch.where(fake, a2 + 1, a2)
    A_ = (a + k[:cfg.sent_len] * d) % n_words + N_SPECIAL
    B_ = torch.where(is_next[:, None], a + k[cfg.sent_len:] * d, a2 + k[:cfg.sent_len] * d2) % n_words + N_SPECIAL
    col = lambda v: torch.full((n, 1), v)
    tokens = torch.cat([col(CLS), A_, col(SEP), B_, col(SEP)], 1)  # (n, 2 * sent_len + 3)
    segments = torch.cat([torch.zeros(n, cfg.sent_len + 2), torch.ones(n, cfg.sent_len + 1)], 1).long()
    # §3.1 Task #1: choose 15 % of the word positions; 80 % -> [MASK], 10 % -> random word, 10 % unchanged.
    chosen = (torch.rand(tokens.shape, generator=g) < 0.15) & (tokens >= N_SPECIAL)
    r = torch.rand(tokens.shape, generator=g)
    random_words = torch.randint(N_SPECIAL, cfg.vocab, tokens.shape, generator=g)
    inputs = torch.where(chosen & (r < 0.8), MASK, tokens)
    inputs = torch.where(chosen & (r >= 0.8) & (r < 0.9), random_words, inputs)
    labels = torch.where(chosen, tokens, -100)                 # loss only on the chosen positions
    return inputs, segments, labels, is_next.long()


def setup_ddp(device: str):
    """Under torchrun (WORLD_SIZE > 1) join the process group: returns (rank, world size, device)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def train(cfg: Config, device: str = "cpu") -> dict:
    rank, world, device = setup_ddp(device)                    # every rank draws the same batches, keeps its share
    torch.manual_seed(cfg.seed)
    g, g_test = torch.Generator().manual_seed(cfg.seed), torch.Generator().manual_seed(cfg.seed + 10_000)
    model = build_model(cfg).to(device)
    net = DDP(model) if world > 1 else model                   # DDP averages the gradients over the ranks
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    warm = max(1, cfg.steps // 10)                             # linear warm-up then linear decay (§A.2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, (cfg.steps - s) / (cfg.steps - warm)))
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda"))
    start, tokens_seen = time.perf_counter(), 0
    model.train()
    for _ in range(cfg.steps):
        inputs, segments, labels, is_next = (t[rank::world].to(device) for t in make_batch(cfg, cfg.batch_size, g))
        with torch.autocast(**amp):
            mlm_logits, nsp_logits = net(inputs, segments)
        loss = F.cross_entropy(mlm_logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100) + \
            F.cross_entropy(nsp_logits.float(), is_next)       # sum of the two pre-training losses
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens_seen += inputs.numel() * world
    train_s = time.perf_counter() - start
    model.eval()
    inputs, segments, labels, is_next = (t[rank::world].to(device) for t in make_batch(cfg, cfg.n_test, g_test))
    with torch.no_grad(), torch.autocast(**amp):               # held out; each rank scores its share
        mlm_logits, nsp_logits = model(inputs, segments)
    chosen = labels != -100
    counts = torch.tensor([(mlm_logits.argmax(-1)[chosen] == labels[chosen]).sum().item(), chosen.sum().item(),
                           (nsp_logits.argmax(-1) == is_next).sum().item(), len(is_next)], dtype=torch.float64)
    if world > 1:
        counts = counts.to(device)
        dist.all_reduce(counts)                                # sum the hits and counts over the ranks
        if os.environ.get("KB_DDP_CHECKSUM"):                  # lets the DDP test compare the ranks' weights
            digest = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters()))
            print(f"ddp-params rank={rank} sha256={digest.hexdigest()}", file=sys.stderr, flush=True)
    mlm_acc, nsp_acc = (counts[0] / counts[1]).item(), (counts[2] / counts[3]).item()
    mlm_chance = 1 / (cfg.vocab - N_SPECIAL)
    value = min(mlm_acc - mlm_chance, nsp_acc - 0.5)
    params = sum(p.numel() for p in model.parameters())
    return {"metric": GATE[0], "value": value, "passed": value >= GATE[2], "mlm_accuracy": mlm_acc,
            "mlm_chance": mlm_chance, "nsp_accuracy": nsp_acc, "params": params, "final_loss": loss.item(),
            "seconds": time.perf_counter() - start, "tokens_per_s": tokens_seen / train_s,
            "model_flops_per_s": 6 * params * tokens_seen / train_s, "world_size": world}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=PRESETS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args, rest = ap.parse_known_args(argv)
    cfg = PRESETS[args.preset]
    names = {f.name for f in fields(Config)}
    for item in rest:  # --field=value overrides
        key, _, value = item.removeprefix("--").partition("=")
        if key not in names:
            ap.error(f"unknown option {item}")
        old = getattr(cfg, key)
        new = value.lower() in ("1", "true", "yes") if isinstance(old, bool) else \
            ast.literal_eval(value) if isinstance(old, tuple) else type(old)(value)
        cfg = replace(cfg, **{key: new})
    result = train(cfg, args.device)
    if not dist.is_initialized() or dist.get_rank() == 0:     # one report, from rank 0
        print(json.dumps(result) if args.json else f"{GATE[0]} = {result['value']:.4f} "
              f"({'passed' if result['passed'] else 'FAILED'} the gate {GATE[1]} {GATE[2]})", flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
