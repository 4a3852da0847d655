"""word2vec: CBOW and skip-gram word vectors.

Paper: Efficient Estimation of Word Representations in Vector Space (Mikolov et al., 2013) https://arxiv.org/abs/1301.3781
Two log-linear models share one projection (the embedding table v) and an output layer v':
CBOW averages the context vectors to predict the centre word (§3.1); skip-gram predicts every word
within a random distance R in 1..C from the centre word alone (§3.2). Output layer: the paper's
Huffman-tree hierarchical softmax (§2.1), negative sampling from the companion paper (Mikolov et
al., 2013, arXiv 1310.4546, unigram^0.75 noise), or a full softmax (toy scale only).
Data: a generated corpus of (entity, role) words whose contexts mix entity words and role words,
so v(e, r) ~ a_e + b_r and analogies v(e1, r2) - v(e1, r1) + v(e2, r1) ~ v(e2, r2) should hold (§4).
Gate: 3CosAdd accuracy on analogy questions never seen in training (question words excluded).
Run: python -m runnable.word2vec --preset tiny
"""
from __future__ import annotations

import argparse
import heapq
import json
import time
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("analogy-accuracy", ">=", 0.9)


@dataclass
class Config:
    arch: str = "skipgram"      # "skipgram" (§3.2) or "cbow" (§3.1)
    loss: str = "neg"           # "hs" (§2.1), "neg" (1310.4546) or "softmax"
    D: int = 32                 # vector dimensionality (300 / 640 / 1000 in the paper)
    C: int = 4                  # max context distance: skip-gram samples R in 1..C; CBOW uses c = C
    k: int = 5                  # negative samples per target (loss="neg")
    n_entities: int = 24        # e.g. countries
    n_roles: int = 4            # e.g. country / capital / currency: the analogy offsets
    ctx_per_entity: int = 3     # words that only co-occur with one entity
    ctx_per_role: int = 4       # words that only co-occur with one role
    n_noise: int = 40           # filler words
    sent_len: int = 8
    n_sents: int = 20000
    steps: int = 600
    batch_size: int = 256
    lr: float = 0.01            # Adam here; the paper uses SGD from 0.025 decaying linearly to 0 (§4.2)
    n_questions: int = 2000
    vocab: int = 0              # 0: set by the generated corpus; the paper restricts it to 1M words (§4.2)
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # Table 4 / Table 8: 300-dim skip-gram, C = 10 (§3.2), hierarchical softmax, 1M-word vocabulary (§4.2)
    "paper": Config(D=300, C=10, loss="hs", vocab=1_000_000),
    "gpu": Config(D=128, n_entities=200, n_roles=6, n_noise=2000, n_sents=2_000_000, steps=20000,
                  batch_size=4096, lr=0.003, amp_bf16=True),
}


def huffman(counts: list[int], max_len: int = 40):
    """§2.1: Huffman tree over word counts. Returns per word its inner nodes (root first) and codes."""
    V = len(counts)
    heap = [(c, i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent, bit, nxt = {}, {}, V
    while len(heap) > 1:
        (c1, a), (c2, b) = heapq.heappop(heap), heapq.heappop(heap)
        parent[a], bit[a], parent[b], bit[b] = nxt, 0, nxt, 1
        heapq.heappush(heap, (c1 + c2, nxt))
        nxt += 1
    nodes, codes = torch.zeros(V, max_len, dtype=torch.long), torch.full((V, max_len), -1.0)
    for w in range(V):
        path, n = [], w
        while n in parent:
            path.append((parent[n] - V, bit[n]))   # inner nodes are numbered 0 .. V-2
            n = parent[n]
        for j, (node, b) in enumerate(reversed(path)):
            nodes[w, j], codes[w, j] = node, b
    L = int((codes >= 0).sum(1).max())
    return nodes[:, :L], codes[:, :L]            # (V, L); code -1 = padding


class Word2Vec(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        V = cfg.vocab or vocab_size(cfg)
        self.v = nn.Embedding(V, cfg.D)                        # input vectors: the word vectors
        self.v_out = nn.Embedding(V - 1 if cfg.loss == "hs" else V, cfg.D)  # v': inner nodes (hs) or words
        nn.init.uniform_(self.v.weight, -0.5 / cfg.D, 0.5 / cfg.D)
        nn.init.zeros_(self.v_out.weight)
        self.noise = torch.ones(V)                             # unigram^0.75 (1310.4546 §2.2), kept on CPU
        self.register_buffer("nodes", torch.zeros(V, 40, dtype=torch.long))
        self.register_buffer("codes", torch.zeros(V, 40))

    def log_p(self, h, target, g):
        """log p(target | h) under the chosen output layer. h: (N, D), target: (N,) -> (N,)"""
        if self.cfg.loss == "softmax":
            return -F.cross_entropy(h @ self.v_out.weight.T, target, reduction="none")
        if self.cfg.loss == "hs":                              # §2.1: product of binary decisions on the path
            nodes, codes = self.nodes[target], self.codes[target]  # (N, L)
            s = torch.einsum("nd,nld->nl", h, self.v_out(nodes))
            logp = F.logsigmoid(torch.where(codes == 1, -s, s))    # sigma(+-v'_n . h)
            return (logp * (codes >= 0)).sum(1)
        neg = torch.multinomial(self.noise, target.numel() * self.cfg.k, True, generator=g)
        neg = neg.view(-1, self.cfg.k).to(h.device)            # (N, k) samples from P_n(w)
        pos = F.logsigmoid((h * self.v_out(target)).sum(-1))   # log sigma(v'_wO . v_wI)
        return pos + F.logsigmoid(-torch.einsum("nd,nkd->nk", h, self.v_out(neg))).sum(1)

    def forward(self, centre, context, mask, g):
        """centre (B,), context (B, 2C), mask (B, 2C) True where the word is inside the window."""
        if self.cfg.arch == "cbow":                            # §3.1: average of the context vectors
            h = (self.v(context) * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
            return -self.log_p(h, centre, g).mean()
        h = self.v(centre)[:, None].expand(-1, context.size(1), -1)[mask]  # §3.2: (pairs, D)
        return -self.log_p(h, context[mask], g).mean()


def build_model(cfg: Config) -> nn.Module:
    return Word2Vec(cfg)


def vocab_size(cfg: Config) -> int:
    E, R = cfg.n_entities, cfg.n_roles
    return E * R + E * cfg.ctx_per_entity + R * cfg.ctx_per_role + cfg.n_noise


def make_corpus(cfg: Config, g: torch.Generator) -> torch.Tensor:
    """Sentences: word(e, r), ctx words of e, ctx words of r, noise, in random order. (n, sent_len)"""
    E, R, n = cfg.n_entities, cfg.n_roles, cfg.n_sents
    e, r = torch.randint(E, (n,), generator=g), torch.randint(R, (n,), generator=g)
    ent0, role0 = E * R, E * R + E * cfg.ctx_per_entity
    noise0 = role0 + R * cfg.ctx_per_role
    n_e, n_r = 2, 2                                            # entity / role words per sentence
    cols = [e * R + r]                                         # the word (e, r) itself
    cols += [ent0 + e * cfg.ctx_per_entity + torch.randint(cfg.ctx_per_entity, (n,), generator=g) for _ in range(n_e)]
    cols += [role0 + r * cfg.ctx_per_role + torch.randint(cfg.ctx_per_role, (n,), generator=g) for _ in range(n_r)]
    cols += [noise0 + torch.randint(cfg.n_noise, (n,), generator=g) for _ in range(cfg.sent_len - 1 - n_e - n_r)]
    sents = torch.stack(cols, 1)
    order = torch.rand(n, cfg.sent_len, generator=g).argsort(1)
    return sents.gather(1, order)


def analogy_questions(cfg: Config, g: torch.Generator) -> torch.Tensor:
    """a:b :: c:d with a = (e1, r1), b = (e1, r2), c = (e2, r1), d = (e2, r2). (n, 4)"""
    E, R, n = cfg.n_entities, cfg.n_roles, cfg.n_questions
    e1, e2 = torch.randint(E, (n,), generator=g), torch.randint(E - 1, (n,), generator=g)
    e2 = e2 + (e2 >= e1).long()                                # e2 != e1
    r1, r2 = torch.randint(R, (n,), generator=g), torch.randint(R - 1, (n,), generator=g)
    r2 = r2 + (r2 >= r1).long()
    return torch.stack([e1 * R + r1, e1 * R + r2, e2 * R + r1, e2 * R + r2], 1)


@torch.no_grad()
def analogy_accuracy(vectors: torch.Tensor, q: torch.Tensor) -> float:
    """§4: x = v_b - v_a + v_c, answer = the nearest word by cosine, question words excluded (3CosAdd)."""
    W = F.normalize(vectors.float(), dim=1)                    # (V, D)
    x = W[q[:, 1]] - W[q[:, 0]] + W[q[:, 2]]                   # (n, D)
    sim = F.normalize(x, dim=1) @ W.T                          # (n, V)
    sim.scatter_(1, q[:, :3], float("-inf"))
    return (sim.argmax(1) == q[:, 3]).float().mean().item()


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    sents = make_corpus(cfg, g)                                # (n, S)
    q = analogy_questions(cfg, g).to(device)                   # held out: never in the corpus as such
    model = build_model(cfg)
    V = model.v.num_embeddings
    counts = torch.bincount(sents.flatten(), minlength=V).float()
    model.noise = counts ** 0.75
    if cfg.loss == "hs":
        model.nodes, model.codes = huffman(counts.long().tolist())
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / cfg.steps)  # linear decay (§4.2)
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda"))
    S, C = cfg.sent_len, cfg.C
    offsets = torch.tensor([d for d in range(-C, C + 1) if d != 0])  # (2C,)
    start, words = time.perf_counter(), 0
    for step in range(cfg.steps):
        s = torch.randint(len(sents), (cfg.batch_size,), generator=g)
        i = torch.randint(S, (cfg.batch_size,), generator=g)
        j = i[:, None] + offsets                               # (B, 2C) context positions
        R = torch.randint(1, C + 1, (cfg.batch_size, 1), generator=g) if cfg.arch == "skipgram" else C
        mask = (j >= 0) & (j < S) & (offsets.abs() <= R)       # §3.2: random window R in 1..C
        context = sents[s[:, None], j.clamp(0, S - 1)]
        with torch.autocast(**amp):
            loss = model(sents[s, i].to(device), context.to(device), mask.to(device), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        words += cfg.batch_size
    train_s = time.perf_counter() - start
    value = analogy_accuracy(model.v.weight, q)
    return {"metric": GATE[0], "value": value, "passed": value >= GATE[2], "arch": cfg.arch, "loss": cfg.loss,
            "params": sum(p.numel() for p in model.parameters()), "final_loss": loss.item(),
            "seconds": time.perf_counter() - start, "tokens_per_s": words / train_s}


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
        cfg = replace(cfg, **{key: value.lower() in ("1", "true", "yes") if isinstance(old, bool) else type(old)(value)})
    result = train(cfg, args.device)
    print(json.dumps(result) if args.json else f"{GATE[0]} = {result['value']:.4f} "
          f"({'passed' if result['passed'] else 'FAILED'} the gate {GATE[1]} {GATE[2]})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
