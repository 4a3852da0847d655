"""GPT: generative pre-training of a Transformer decoder, then discriminative fine-tuning.

Paper: Improving Language Understanding by Generative Pre-Training (Radford et al., 2018) https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf
A decoder-only Transformer (masked self-attention, learned positions, GELU, post-LN) is first trained as
a left-to-right language model on unlabeled text (§3.1, Eq. 1-2), then fine-tuned on a few labeled texts
with one new linear layer W_y on the state of an appended extract token (§3.2-3.3, Eq. 3-4), keeping the
LM loss as an auxiliary objective: L3 = L2 + lambda * L1 with lambda = 0.5 (Eq. 5).
Tiny: texts in two "dialects" (two sparse Markov chains), 16 of them labeled; --steps=0 = no pre-training.
Gate: held-out accuracy at telling the dialect of a text after fine-tuning on 16 labels >= 0.9.
Run: python -m runnable.gpt --preset tiny   (data parallel: torchrun --nproc_per_node=N -m runnable.gpt --preset gpu --device cuda)
"""

import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

GATE = ("accuracy", ">=", 0.9)
START, EXTRACT, N_SPECIAL = (
    0,
    1,
    2,
)  # §3.3: randomly initialised start and extract tokens; words follow


@dataclass
class Config:
    n_layer: int = 2  # 12 in the paper
    d_model: int = 64  # 768
    n_head: int = 4  # 12
    d_ff: int = 256  # 3072 (4 d_model)
    vocab: int = N_SPECIAL + 64  # 40,478 BPE tokens in the paper
    n_ctx: int = 32  # learned positions (512)
    dropout: float = 0.0  # residual, embedding and attention dropout 0.1 (§4.1)
    seq_len: int = 24  # words per text
    branch: int = 3  # likely successors of a word in one dialect
    noise: float = 0.1  # probability that any word follows instead
    steps: int = 300  # pre-training steps
    batch_size: int = 32  # 64 sequences of 512 tokens in the paper
    lr: float = 6e-3  # max lr 2.5e-4, linear warm-up, then cosine decay (§4.1)
    warmup: int = 30  # 2000
    n_labels: int = 16  # labeled texts for fine-tuning, one full batch (batches of 32 in §4.1)
    ft_steps: int = 40  # full-batch fine-tuning steps (3 epochs in the paper)
    ft_lr: float = 1e-3  # 6.25e-5
    lam: float = 0.5  # lambda of Eq. 5
    n_test: int = 1000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # §4.1; the paper states no total: this counts 116.5M (GPT-2's Table 2 calls the same model 117M).
    "paper": Config(
        n_layer=12,
        d_model=768,
        n_head=12,
        d_ff=3072,
        vocab=40478,
        n_ctx=512,
        dropout=0.1,
        seq_len=510,
        batch_size=64,
        lr=2.5e-4,
        warmup=2000,
        steps=100000,
        ft_lr=6.25e-5,
    ),
    "gpu": Config(
        n_layer=12,
        d_model=768,
        n_head=12,
        d_ff=3072,
        vocab=N_SPECIAL + 512,
        n_ctx=128,
        seq_len=126,
        branch=4,
        steps=3000,
        batch_size=128,
        lr=3e-4,
        warmup=200,
        n_labels=64,
        ft_lr=1e-4,
        amp_bf16=True,
    ),
}


def causal_attention(q, k, v, dropout_p: float = 0.0):
    """Masked self-attention: softmax(q k^T / sqrt(d_k)) v, position i sees positions <= i only."""
    T = q.size(-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, h, T, T)
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    weights = F.dropout(scores.masked_fill(~mask, float("-inf")).softmax(-1), dropout_p)
    return weights @ v  # (B, h, T, d_k)


class Block(nn.Module):
    """transformer_block of Eq. 2: masked multi-head self-attention and a GELU FFN, each post-LN."""

    def __init__(self, d_model: int, n_head: int, d_ff: int, dropout: float):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.W_qkv, self.W_o = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.W_1, self.W_2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)
        self.ln_1, self.ln_2, self.drop = (
            nn.LayerNorm(d_model),
            nn.LayerNorm(d_model),
            nn.Dropout(dropout),
        )

    def forward(self, h):  # (B, T, d_model)
        B, T, D = h.shape
        q, k, v = self.W_qkv(h).view(B, T, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        a = causal_attention(q, k, v, self.dropout if self.training else 0.0)  # (B, h, T, d_k)
        h = self.ln_1(h + self.drop(self.W_o(a.transpose(1, 2).reshape(B, T, D))))
        return self.ln_2(h + self.drop(self.W_2(F.gelu(self.W_1(h)))))  # §4.1: GELU


class GPT(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.W_e, self.W_p = (
            nn.Embedding(cfg.vocab, cfg.d_model),
            nn.Embedding(cfg.n_ctx, cfg.d_model),
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            Block(cfg.d_model, cfg.n_head, cfg.d_ff, cfg.dropout) for _ in range(cfg.n_layer)
        )
        self.W_y = nn.Linear(cfg.d_model, 2)  # Eq. 3: the only new fine-tuning weights
        for m in self.modules():  # §4.1: N(0, 0.02) initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, U, classify: bool = False):  # (B, T) token ids
        h = self.drop(
            self.W_e(U) + self.W_p(torch.arange(U.size(1), device=U.device))
        )  # Eq. 2: h_0 = U W_e + W_p
        for block in self.blocks:
            h = block(h)  # h_l = transformer_block(h_{l-1})
        lm_logits = h @ self.W_e.weight.T  # Eq. 2: P(u) = softmax(h_n W_e^T), (B, T, vocab)
        return (
            (lm_logits, self.W_y(h[:, -1])) if classify else lm_logits
        )  # Eq. 3: W_y on the extract token


def build_model(cfg: Config) -> nn.Module:
    return GPT(cfg)


def make_dialects(cfg: Config, g: torch.Generator) -> torch.Tensor:
    """Two sparse transition matrices P[c, w, w']: `branch` likely successors per word, else noise."""
    n = cfg.vocab - N_SPECIAL
    P = torch.zeros(2, n, n)
    for c in range(2):
        successors = torch.rand(n, n, generator=g).argsort(1)[:, : cfg.branch]  # (n, branch)
        P[c].scatter_(1, successors, torch.rand(n, cfg.branch, generator=g) + 0.5)
    return (1 - cfg.noise) * P / P.sum(-1, keepdim=True) + cfg.noise / n


def sample(P: torch.Tensor, n: int, T: int, g: torch.Generator):
    """n texts of T words, each from a random dialect y; returns word ids (n, T) and y (n,)."""
    y = torch.randint(2, (n,), generator=g)
    x = torch.randint(P.size(1), (n, T), generator=g)  # x[:, 0] uniform; the rest is overwritten
    for t in range(1, T):
        x[:, t] = torch.multinomial(P[y, x[:, t - 1]], 1, generator=g).squeeze(1)
    return x + N_SPECIAL, y


def lm_loss(logits, U):
    """Eq. 1, negated and averaged: -log P(u_i | u_<i) for every next token in U."""
    return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), U[:, 1:].flatten())


def with_tokens(x, extract: bool):
    """§3.3 input transformation: [start] text ([extract])."""
    return torch.cat(
        [torch.full((len(x), 1), START), x] + [torch.full((len(x), 1), EXTRACT)] * extract, 1
    )


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


def all_sum(values, device):
    """Sum a list of numbers over all ranks (the held-out set is split between them)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


def fine_tune(cfg: Config, model, x_lab, y_lab, x_test, y_test, rank, world, device, amp) -> float:
    """§3.2: maximise L3 = L2 + lambda * L1 on the labeled texts; return the held-out accuracy."""
    net = DDP(model) if world > 1 else model  # every weight, W_y included, is used now
    U, y = with_tokens(x_lab, extract=True)[rank::world].to(device), y_lab[rank::world].to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.ft_lr, weight_decay=0.01)
    model.train()
    for _ in range(cfg.ft_steps):
        with torch.autocast(**amp):
            lm_logits, clf_logits = net(U, classify=True)
        L2 = F.cross_entropy(clf_logits.float(), y)  # Eq. 4
        L1 = lm_loss(lm_logits[:, :-1], U[:, :-1])  # auxiliary LM loss on the text itself
        loss = L2 + cfg.lam * L1  # Eq. 5
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    U, y = with_tokens(x_test, extract=True)[rank::world].to(device), y_test[rank::world].to(device)
    with torch.no_grad(), torch.autocast(**amp):
        hits = (model(U, classify=True)[1].argmax(-1) == y).sum().item()
    hits, n = all_sum([hits, len(y)], device)
    return hits / n


def train(cfg: Config, device: str = "cpu") -> dict:
    rank, world, device = setup_ddp(device)
    torch.manual_seed(cfg.seed)
    g, g_lab, g_test = (torch.Generator().manual_seed(cfg.seed + k) for k in (0, 10_000, 20_000))
    P = make_dialects(cfg, torch.Generator().manual_seed(1234))  # the two "languages", fixed
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    model = build_model(cfg).to(device)
    net = (
        DDP(model, find_unused_parameters=True) if world > 1 else model
    )  # W_y is unused while pre-training
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(
            (s + 1) / cfg.warmup,
            0.5 * (1 + math.cos(math.pi * (s - cfg.warmup) / max(1, cfg.steps - cfg.warmup))),
        ),
    )  # §4.1: linear warm-up, cosine decay
    start, tokens = time.perf_counter(), 0
    for _ in range(cfg.steps):  # §3.1: unsupervised pre-training
        x, _ = sample(P, cfg.batch_size, cfg.seq_len, g)  # labels are thrown away
        U = with_tokens(x, extract=False)[rank::world].to(device)  # this rank's share of the batch
        with torch.autocast(**amp):
            loss = lm_loss(net(U), U)
        opt.zero_grad()
        loss.backward()  # DDP averages the gradients over ranks
        opt.step()
        sched.step()
        tokens += U.numel() * world
    pretrain_s = max(time.perf_counter() - start, 1e-9)
    del net  # drop the pre-training DDP wrapper
    x_lab, y_lab = sample(P, cfg.n_labels, cfg.seq_len, g_lab)  # the few labeled texts
    x_test, y_test = sample(P, cfg.n_test, cfg.seq_len, g_test)  # held out: fresh texts
    with torch.no_grad(), torch.autocast(**amp):  # held-out LM loss (Eq. 1), before fine-tuning
        U_test = with_tokens(x_test, extract=False)[rank::world].to(device)
        val_loss = all_sum(
            [lm_loss(model.eval()(U_test), U_test).item() * len(U_test), len(U_test)], device
        )
    value = fine_tune(cfg, model, x_lab, y_lab, x_test, y_test, rank, world, device, amp)
    params = sum(p.numel() for p in model.parameters())
    if os.environ.get("KB_DDP_CHECKSUM"):  # lets the DDP test compare the ranks
        digest = hashlib.sha256(
            b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())
        )
        print(f"ddp-params rank={rank} sha256={digest.hexdigest()}", file=sys.stderr, flush=True)
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": params,
        "lm_val_loss": val_loss[0] / val_loss[1],
        "seconds": time.perf_counter() - start,
        "world_size": world,
        "tokens_per_s": tokens / pretrain_s,
        "model_flops_per_s": 6 * params * tokens / pretrain_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
