"""ERNIE (Baidu, 1.0): knowledge masking of whole phrases and entities.

Paper: ERNIE: Enhanced Representation through Knowledge Integration (Sun et al., 2019) https://arxiv.org/abs/1904.09223
BERT masks single word pieces, so a piece of a multi-token name can be filled in from the other pieces of
the same name. ERNIE (§3.2) trains in stages: basic-level masking, then phrase-level masking, then
entity-level masking, where all tokens of a phrase or a named entity are masked together, so the model
must recover the whole unit from the rest of the sentence and learns the knowledge that ties them.
Tiny corpus: each sentence holds a "key" word and the 3-token entity that the key determines, at random
places among filler words. Entity tokens give each other away; only the key says which entity it is.
Gate: held-out sentences with the whole entity masked: all 3 tokens right in >= 0.8 of them.
Run: python -m runnable.ernie --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("entity-exact-match", ">=", 0.8)
PAD, CLS, SEP, MASK, N_SPECIAL = 0, 1, 2, 3, 4


@dataclass
class Config:
    L: int = 2  # layers (12: "the same model setting as BERT-base")
    H: int = 64  # hidden size (768)
    A: int = 4  # heads (12)
    d_ff: int = 256
    n_entities: int = 16  # keys and entities of the tiny corpus
    entity_len: int = 3  # tokens per entity
    n_fillers: int = 16
    sent_len: int = 10  # words per sentence (after [CLS])
    vocab: int = 0  # 0: as the corpus needs; 18,000 Chinese characters in the paper (§4.1)
    max_pos: int = 16  # 512
    dropout: float = 0.0  # 0.1
    masking: str = (
        "knowledge"  # "knowledge" (basic + entity-level, §3.2) or "token" (BERT's basic masking)
    )
    p_entity: float = (
        0.5  # knowledge masking: share of sentences whose entity is masked as one unit
    )
    steps: int = 320
    batch_size: int = 64
    lr: float = 3e-3
    n_test: int = 2000
    seed: int = 0
    amp_bf16: bool = False

    def __post_init__(self):  # at least the tokens the corpus uses
        self.vocab = max(
            self.vocab, N_SPECIAL + self.n_entities * (1 + self.entity_len) + self.n_fillers
        )


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        L=12, H=768, A=12, d_ff=3072, vocab=18000, max_pos=512, dropout=0.1
    ),  # BERT-base shape
    "gpu": Config(
        L=6,
        H=384,
        A=6,
        d_ff=1536,
        n_entities=500,
        n_fillers=2000,
        sent_len=60,
        max_pos=64,
        steps=4000,
        batch_size=256,
        lr=5e-4,
        amp_bf16=True,
    ),
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


class ERNIE(nn.Module):
    """A BERT-base-shaped encoder with a masked-LM head; what differs from BERT is the masking."""

    def __init__(self, cfg: Config):
        super().__init__()
        H = cfg.H
        self.tok, self.pos = nn.Embedding(cfg.vocab, H), nn.Embedding(cfg.max_pos, H)
        self.emb_norm, self.drop = nn.LayerNorm(H), nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(H, cfg.A, cfg.d_ff, cfg.dropout) for _ in range(cfg.L)
        )
        self.mlm_transform, self.mlm_norm = nn.Linear(H, H), nn.LayerNorm(H)
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens):  # (B, T) -> (B, T, vocab)
        pos = torch.arange(tokens.size(1), device=tokens.device)
        x = self.drop(self.emb_norm(self.tok(tokens) + self.pos(pos)))
        for layer in self.layers:
            x = layer(x)
        return self.mlm_norm(F.gelu(self.mlm_transform(x))) @ self.tok.weight.T + self.mlm_bias


def build_model(cfg: Config) -> nn.Module:
    return ERNIE(cfg)


def make_sentences(cfg: Config, n: int, g: torch.Generator):
    """[CLS] + sent_len words: one key k, its entity (the entity_len tokens of entity k, in order) and fillers.
    Returns tokens (n, 1 + sent_len) and a mask of the entity positions (the unit to mask together)."""
    E, key0 = cfg.entity_len, N_SPECIAL
    ent0, fill0 = key0 + cfg.n_entities, key0 + cfg.n_entities * (1 + E)
    k = torch.randint(cfg.n_entities, (n,), generator=g)
    tokens = torch.randint(fill0, fill0 + cfg.n_fillers, (n, cfg.sent_len), generator=g)
    start = torch.randint(cfg.sent_len - E + 1, (n,), generator=g)  # where the entity sits
    slots = torch.arange(cfg.sent_len)
    is_entity = (slots >= start[:, None]) & (slots < start[:, None] + E)  # (n, sent_len)
    tokens = torch.where(is_entity, ent0 + k[:, None] * E + (slots - start[:, None]), tokens)
    free = torch.rand(n, cfg.sent_len, generator=g).masked_fill(
        is_entity, -1.0
    )  # key: any other slot
    tokens[torch.arange(n), free.argmax(1)] = key0 + k
    cls = torch.full((n, 1), CLS)
    return torch.cat([cls, tokens], 1), torch.cat(
        [torch.zeros(n, 1, dtype=torch.bool), is_entity], 1
    )


def mask_batch(cfg: Config, tokens, is_entity, g: torch.Generator):
    """Basic level: 15 % of single tokens, 80/10/10 as in BERT. Entity level (§3.2): for a share p_entity of
    the sentences, every token of the entity is masked at once and predicted."""
    n = tokens.size(0)
    chosen = (torch.rand(tokens.shape, generator=g) < 0.15) & (tokens >= N_SPECIAL)
    if cfg.masking == "knowledge":
        unit = torch.rand(n, 1, generator=g) < cfg.p_entity
        chosen = torch.where(
            unit, is_entity, chosen
        )  # the whole unit, and only it, in those sentences
    r = torch.rand(tokens.shape, generator=g)
    inputs = torch.where(chosen & (r < 0.8), MASK, tokens)
    inputs = torch.where(
        chosen & (r >= 0.8) & (r < 0.9),
        torch.randint(N_SPECIAL, cfg.vocab, tokens.shape, generator=g),
        inputs,
    )
    return inputs, torch.where(chosen, tokens, -100)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g, g_test = (
        torch.Generator().manual_seed(cfg.seed),
        torch.Generator().manual_seed(cfg.seed + 10_000),
    )
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
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
        inputs, labels = (
            t.to(device) for t in mask_batch(cfg, *make_sentences(cfg, cfg.batch_size, g), g)
        )
        with torch.autocast(**amp):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens_seen += inputs.numel()
    train_s = time.perf_counter() - start
    model.eval()
    tokens, is_entity = (t.to(device) for t in make_sentences(cfg, cfg.n_test, g_test))  # held out
    with torch.no_grad(), torch.autocast(**amp):
        pred = model(tokens.masked_fill(is_entity, MASK)).argmax(
            -1
        )  # every entity token masked together
    correct = (pred == tokens) | ~is_entity
    value = correct.all(1).float().mean().item()  # the whole entity right
    token_acc = (pred == tokens)[is_entity].float().mean().item()
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "entity_token_accuracy": token_acc,
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
