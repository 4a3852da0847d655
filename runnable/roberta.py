"""RoBERTa: BERT pre-training, re-tuned (masked LM only, dynamic masking, full sentences).

Paper: RoBERTa: A Robustly Optimized BERT Pretraining Approach (Liu et al., 2019) https://arxiv.org/abs/1907.11692
The architecture is BERT's; what changes is the recipe: no next-sentence prediction, inputs packed with
contiguous full sentences up to the length limit (FULL-SENTENCES, §4.2), a fresh masking pattern every
time a sequence is fed (dynamic masking, §4.1) instead of masks fixed once in preprocessing, larger
batches and a byte-level BPE vocabulary of 50K units. Tiny corpus: "sentences" are arithmetic
progressions mod n_words, packed with [SEP] between them; a fixed training set is seen for many epochs.
Gate: masked-LM accuracy on held-out packed sequences >= 0.7 (chance: 1/20).
Run: python -m runnable.roberta --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("mlm-accuracy", ">=", 0.7)
PAD, CLS, SEP, MASK, N_SPECIAL = 0, 1, 2, 3, 4  # <pad>, <s>, </s>, <mask>; words are 4 .. vocab - 1


@dataclass
class Config:
    L: int = 2  # layers (12 in RoBERTa-base, 24 in RoBERTa-large)
    H: int = 64  # hidden size (768 / 1024)
    A: int = 4  # attention heads (12 / 16)
    d_ff: int = 256  # 4H
    vocab: int = N_SPECIAL + 20  # byte-level BPE: 50,265 entries in the released models (§4.4)
    max_pos: int = 16  # 512 tokens
    dropout: float = 0.0  # 0.1 in the paper
    sent_len: int = 6  # words per sentence
    n_sents: int = 2  # sentences packed per sequence
    masking: str = "dynamic"  # "dynamic" (§4.1) or "static" (BERT: masks fixed in preprocessing)
    static_copies: int = 10  # the static baseline duplicates the data 10 times with different masks
    n_train: int = 2000  # fixed training sequences, revisited every epoch
    steps: int = 400
    batch_size: int = 64
    lr: float = 2e-3  # 6e-4 (base) with warm-up in the paper
    n_test: int = 2000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        L=12, H=768, A=12, d_ff=3072, vocab=50265, max_pos=512, dropout=0.1
    ),  # RoBERTa-base
    "large": Config(
        L=24, H=1024, A=16, d_ff=4096, vocab=50265, max_pos=512, dropout=0.1
    ),  # RoBERTa-large
    "gpu": Config(
        L=6,
        H=384,
        A=6,
        d_ff=1536,
        vocab=N_SPECIAL + 200,
        max_pos=128,
        sent_len=20,
        n_sents=6,
        n_train=100_000,
        steps=4000,
        batch_size=512,
        lr=1e-3,
        amp_bf16=True,
    ),  # bigger batches (§5)
}


class EncoderLayer(nn.Module):
    """BERT's Transformer block: post-LN around self-attention and a GELU feed-forward layer."""

    def __init__(self, H: int, A: int, d_ff: int, dropout: float):
        super().__init__()
        self.A, self.dropout = A, dropout
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(H, H) for _ in range(4))
        self.W_1, self.W_2 = nn.Linear(H, d_ff), nn.Linear(d_ff, H)
        self.norm1, self.norm2, self.drop = nn.LayerNorm(H), nn.LayerNorm(H), nn.Dropout(dropout)

    def forward(self, x):  # (B, T, H)
        B, T, H = x.shape
        split = lambda t: t.view(B, T, self.A, H // self.A).transpose(1, 2)  # (B, A, T, H/A)
        heads = F.scaled_dot_product_attention(
            split(self.W_q(x)),
            split(self.W_k(x)),
            split(self.W_v(x)),
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = self.norm1(x + self.drop(self.W_o(heads.transpose(1, 2).reshape(B, T, H))))
        return self.norm2(x + self.drop(self.W_2(F.gelu(self.W_1(x)))))


class RoBERTa(nn.Module):
    """Token + learned position embeddings (a single segment: no NSP, so no sentence-pair embeddings needed),
    an encoder stack and the masked-LM head tied to the token embeddings."""

    def __init__(self, cfg: Config):
        super().__init__()
        H = cfg.H
        self.tok, self.pos = nn.Embedding(cfg.vocab, H), nn.Embedding(cfg.max_pos, H)
        self.emb_norm, self.drop = nn.LayerNorm(H), nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(H, cfg.A, cfg.d_ff, cfg.dropout) for _ in range(cfg.L)
        )
        self.lm_dense, self.lm_norm = nn.Linear(H, H), nn.LayerNorm(H)
        self.lm_bias = nn.Parameter(torch.zeros(cfg.vocab))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens):  # (B, T)
        pos = torch.arange(tokens.size(1), device=tokens.device)
        x = self.drop(self.emb_norm(self.tok(tokens) + self.pos(pos)))
        for layer in self.layers:
            x = layer(x)
        h = self.lm_norm(F.gelu(self.lm_dense(x)))  # (B, T, H)
        return h @ self.tok.weight.T + self.lm_bias  # (B, T, vocab)


def build_model(cfg: Config) -> nn.Module:
    return RoBERTa(cfg)


def make_sequences(cfg: Config, n: int, g: torch.Generator) -> torch.Tensor:
    """FULL-SENTENCES (§4.2): <s> s_1 </s> s_2 </s> ..., each s_i an independent progression mod n_words."""
    n_words, k = cfg.vocab - N_SPECIAL, torch.arange(cfg.sent_len)
    parts = [torch.full((n, 1), CLS)]
    for _ in range(cfg.n_sents):
        a, d = torch.randint(n_words, (n, 1), generator=g), torch.randint(1, 4, (n, 1), generator=g)
        parts += [(a + k * d) % n_words + N_SPECIAL, torch.full((n, 1), SEP)]
    return torch.cat(parts, 1)  # (n, 1 + n_sents * (sent_len + 1))


def mask_tokens(tokens: torch.Tensor, vocab: int, g: torch.Generator):
    """BERT's rule: choose 15 % of the words; 80 % -> <mask>, 10 % -> a random word, 10 % unchanged."""
    chosen = (torch.rand(tokens.shape, generator=g) < 0.15) & (tokens >= N_SPECIAL)
    r = torch.rand(tokens.shape, generator=g)
    random_words = torch.randint(N_SPECIAL, vocab, tokens.shape, generator=g)
    inputs = torch.where(chosen & (r < 0.8), MASK, tokens)
    inputs = torch.where(chosen & (r >= 0.8) & (r < 0.9), random_words, inputs)
    return inputs, torch.where(chosen, tokens, -100)  # labels only where chosen


def epoch_masks(cfg: Config, tokens: torch.Tensor, epoch: int, g: torch.Generator):
    """§4.1. Static: the masks come from preprocessing, one of static_copies fixed patterns per epoch.
    Dynamic: a new pattern is drawn every time the sequence is fed to the model."""
    if cfg.masking == "static":
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch % cfg.static_copies)
    return mask_tokens(tokens, cfg.vocab, g)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g, g_test = (
        torch.Generator().manual_seed(cfg.seed),
        torch.Generator().manual_seed(cfg.seed + 10_000),
    )
    data = make_sequences(cfg, cfg.n_train, g)  # a fixed corpus, revisited every epoch
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01
    )  # §4
    warm = max(1, cfg.steps // 10)  # linear warm-up then linear decay
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, (cfg.steps - s) / (cfg.steps - warm))
    )
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    start, tokens_seen, step, epoch = time.perf_counter(), 0, 0, 0
    model.train()
    while step < cfg.steps:
        inputs_all, labels_all = epoch_masks(cfg, data, epoch, g)
        order = torch.randperm(cfg.n_train, generator=g)
        for i in range(0, cfg.n_train - cfg.batch_size + 1, cfg.batch_size):
            if step == cfg.steps:
                break
            idx = order[i : i + cfg.batch_size]
            inputs, labels = inputs_all[idx].to(device), labels_all[idx].to(device)
            with torch.autocast(**amp):
                logits = model(inputs)
            loss = F.cross_entropy(
                logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100
            )  # MLM only
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tokens_seen, step = tokens_seen + inputs.numel(), step + 1
        epoch += 1
    train_s = time.perf_counter() - start
    model.eval()
    inputs, labels = mask_tokens(
        make_sequences(cfg, cfg.n_test, g_test), cfg.vocab, g_test
    )  # held out
    inputs, labels = inputs.to(device), labels.to(device)
    with torch.no_grad(), torch.autocast(**amp):
        pred = model(inputs).argmax(-1)
    chosen = labels != -100
    value = (pred[chosen] == labels[chosen]).float().mean().item()
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "epochs": epoch,
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
