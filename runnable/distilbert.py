"""DistilBERT: a half-depth BERT distilled during pre-training.

Paper: DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter (Sanh et al., 2019) https://arxiv.org/abs/1910.01108
The student keeps BERT's width but half of its layers, drops the token-type embeddings and the pooler,
and starts from the teacher by taking one layer out of two (§3). It learns from a triple loss: L_ce,
the cross-entropy with the teacher's temperature-softened masked-LM distribution (knowledge
distillation), L_mlm, the ordinary masked-LM loss, and L_cos, a cosine loss that aligns the
directions of the student's and teacher's hidden states. Tiny corpus: progressions mod n_words.
Gate: student's held-out MLM accuracy / teacher's (trained first in the same run) >= 0.9.
Run: python -m runnable.distilbert --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("retained-accuracy", ">=", 0.9)
PAD, CLS, SEP, MASK, N_SPECIAL = 0, 1, 2, 3, 4  # words are tokens 4 .. vocab - 1


@dataclass
class Config:
    L: int = 1  # student layers (6); the teacher has 2 L (BERT-base: 12)
    H: int = 64  # hidden size (768), the same for teacher and student
    A: int = 4  # attention heads (12)
    d_ff: int = 256  # 4H
    vocab: int = N_SPECIAL + 20  # WordPiece, 30,522
    max_pos: int = 16  # 512
    dropout: float = 0.0  # 0.1
    sent_len: int = 6
    n_sents: int = 2
    T: float = 2.0  # temperature of the softmax in L_ce
    alpha_ce: float = 5.0  # weights of L_ce, L_mlm, L_cos (the released training script's values)
    alpha_mlm: float = 2.0
    alpha_cos: float = 1.0
    teacher_steps: int = 300
    student_steps: int = 150
    batch_size: int = 64
    lr: float = 2e-3
    n_test: int = 2000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(
        L=6, H=768, A=12, d_ff=3072, vocab=30522, max_pos=512, dropout=0.1
    ),  # DistilBERT
    "gpu": Config(
        L=3,
        H=384,
        A=6,
        d_ff=1536,
        vocab=N_SPECIAL + 200,
        max_pos=128,
        sent_len=20,
        n_sents=6,
        teacher_steps=3000,
        student_steps=2000,
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


class MLMEncoder(nn.Module):
    """Word + position embeddings (no token-type embeddings, no pooler: §3), L blocks, tied MLM head."""

    def __init__(self, cfg: Config, L: int):
        super().__init__()
        H = cfg.H
        self.tok, self.pos = nn.Embedding(cfg.vocab, H), nn.Embedding(cfg.max_pos, H)
        self.emb_norm, self.drop = nn.LayerNorm(H), nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(EncoderLayer(H, cfg.A, cfg.d_ff, cfg.dropout) for _ in range(L))
        self.mlm_transform, self.mlm_norm = nn.Linear(H, H), nn.LayerNorm(H)
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, tokens):  # (B, T) -> (B, T, vocab), (B, T, H)
        pos = torch.arange(tokens.size(1), device=tokens.device)
        x = self.drop(self.emb_norm(self.tok(tokens) + self.pos(pos)))
        for layer in self.layers:
            x = layer(x)
        h = self.mlm_norm(F.gelu(self.mlm_transform(x)))
        return h @ self.tok.weight.T + self.mlm_bias, x


def build_model(cfg: Config) -> nn.Module:
    """The student, DistilBERT (the teacher is MLMEncoder(cfg, 2 * cfg.L))."""
    return MLMEncoder(cfg, cfg.L)


def init_from_teacher(student: MLMEncoder, teacher: MLMEncoder) -> None:
    """§3 Student initialization: copy embeddings and head, and take one teacher layer out of two."""
    own = student.state_dict()
    for name, value in teacher.state_dict().items():
        if name.startswith("layers."):
            i = int(name.split(".")[1])
            if i % 2:
                continue  # skip every other layer: 0, 2, 4, ... are kept
            name = name.replace(f"layers.{i}.", f"layers.{i // 2}.", 1)
        own[name] = value.clone()
    student.load_state_dict(own)


def triple_loss(cfg: Config, s_logits, t_logits, s_hidden, t_hidden, labels):
    """§3: L = alpha_ce L_ce + alpha_mlm L_mlm + alpha_cos L_cos."""
    chosen = labels != -100  # (B, T) masked positions
    t_soft = F.softmax(t_logits[chosen] / cfg.T, -1)  # teacher's soft targets
    L_ce = -(t_soft * F.log_softmax(s_logits[chosen] / cfg.T, -1)).sum(-1).mean() * cfg.T**2
    L_mlm = F.cross_entropy(s_logits[chosen], labels[chosen])
    L_cos = (1 - F.cosine_similarity(s_hidden.flatten(0, 1), t_hidden.flatten(0, 1), dim=-1)).mean()
    return cfg.alpha_ce * L_ce + cfg.alpha_mlm * L_mlm + cfg.alpha_cos * L_cos


def make_batch(cfg: Config, n: int, g: torch.Generator):
    """[CLS] s_1 [SEP] s_2 [SEP] with progressions mod n_words, masked by BERT's 15 % / 80-10-10 rule."""
    n_words, k = cfg.vocab - N_SPECIAL, torch.arange(cfg.sent_len)
    parts = [torch.full((n, 1), CLS)]
    for _ in range(cfg.n_sents):
        a, d = torch.randint(n_words, (n, 1), generator=g), torch.randint(1, 4, (n, 1), generator=g)
        parts += [(a + k * d) % n_words + N_SPECIAL, torch.full((n, 1), SEP)]
    tokens = torch.cat(parts, 1)
    chosen = (torch.rand(tokens.shape, generator=g) < 0.15) & (tokens >= N_SPECIAL)
    r = torch.rand(tokens.shape, generator=g)
    inputs = torch.where(chosen & (r < 0.8), MASK, tokens)
    inputs = torch.where(
        chosen & (r >= 0.8) & (r < 0.9),
        torch.randint(N_SPECIAL, cfg.vocab, tokens.shape, generator=g),
        inputs,
    )
    return inputs, torch.where(chosen, tokens, -100)


def mlm_accuracy(model, inputs, labels) -> float:
    with torch.no_grad():
        pred = model(inputs)[0].argmax(-1)
    chosen = labels != -100
    return (pred[chosen] == labels[chosen]).float().mean().item()


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g, g_test = (
        torch.Generator().manual_seed(cfg.seed),
        torch.Generator().manual_seed(cfg.seed + 10_000),
    )
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    teacher, student = MLMEncoder(cfg, 2 * cfg.L).to(device), build_model(cfg).to(device)
    start, tokens_seen = time.perf_counter(), 0

    def run(model, steps, loss_fn):
        nonlocal tokens_seen
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
        warm = max(1, steps // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, (steps - s) / (steps - warm))
        )
        model.train()
        for _ in range(steps):
            inputs, labels = (t.to(device) for t in make_batch(cfg, cfg.batch_size, g))
            with torch.autocast(**amp):
                loss = loss_fn(model, inputs, labels)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tokens_seen += inputs.numel()
        return model.eval()

    def mlm(model, inputs, labels):  # the teacher: plain masked-LM pre-training
        return F.cross_entropy(
            model(inputs)[0].float().flatten(0, 1), labels.flatten(), ignore_index=-100
        )

    def distil(model, inputs, labels):
        with torch.no_grad():
            t_logits, t_hidden = teacher(inputs)
        s_logits, s_hidden = model(inputs)
        return triple_loss(
            cfg, s_logits.float(), t_logits.float(), s_hidden.float(), t_hidden.float(), labels
        )

    run(teacher, cfg.teacher_steps, mlm)
    init_from_teacher(student, teacher)
    run(student, cfg.student_steps, distil)
    train_s = time.perf_counter() - start
    inputs, labels = (t.to(device) for t in make_batch(cfg, cfg.n_test, g_test))  # held out
    with torch.autocast(**amp):
        acc_t, acc_s = mlm_accuracy(teacher, inputs, labels), mlm_accuracy(student, inputs, labels)
    value = acc_s / acc_t
    params = sum(p.numel() for p in student.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "teacher_accuracy": acc_t,
        "student_accuracy": acc_s,
        "params": params,
        "teacher_params": sum(p.numel() for p in teacher.parameters()),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": tokens_seen / train_s,
        "model_flops_per_s": 6 * params * tokens_seen / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
