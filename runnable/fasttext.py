"""fastText: skip-gram word vectors built from character n-grams.

Paper: Enriching Word Vectors with Subword Information (Bojanowski et al., 2017) https://arxiv.org/abs/1607.04606
A word is the bag of its character n-grams (3 <= n <= 6, with boundary marks < and >) plus the word
itself; its vector is the sum of their vectors, s(w, c) = sum_{g in G_w} z_g . v_c (§3.2), trained as
skip-gram with negative sampling (§3.1). N-grams are hashed (FNV-1a) into K buckets, so a word never
seen in training still gets a vector from its n-grams; a word-level model has none to give.
Gate: held-out words (stem + suffix, never in the corpus) retrieve a word of their own stem as nearest
neighbour >= 0.9 of the time; untrained n-gram vectors point to the shared (longer) suffix instead.
Run: python -m runnable.fasttext --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("family-retrieval", ">=", 0.9)


@dataclass
class Config:
    d: int = 32  # vector size (300 in the paper)
    minn: int = 3  # §3.2: n-grams with 3 <= n <= 6
    maxn: int = 6
    buckets: int = 20000  # K hash buckets (2 * 10^6 in the paper, §3.2)
    k: int = 5  # negatives per positive pair
    window: int = 5  # context window, a random size in 1..window per centre word
    n_stems: int = 60  # word families: one stem each
    n_suffixes: int = 5  # suffixes shared by all families
    stem_len: int = 4
    suffix_len: int = 5  # longer than the stems: raw n-gram overlap points to the wrong word
    ctx_per_stem: int = 3  # words that only occur near one family
    n_noise: int = 30
    sent_len: int = 6
    n_sents: int = 20000
    steps: int = 400
    batch_size: int = 256
    lr: float = 0.01  # SGD with linear decay in the paper; Adam here
    vocab: int = 0  # 0: set by the generated corpus
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # 300-dim vectors, 2M buckets (§3.2, §4). The vocabulary depends on the corpus (words seen at least 5
    # times); 1M is a stand-in, not a figure from the paper.
    "paper": Config(d=300, buckets=2_000_000, vocab=1_000_000),
    "gpu": Config(
        d=128,
        buckets=2_000_000,
        n_stems=2000,
        n_suffixes=20,
        n_noise=5000,
        n_sents=2_000_000,
        steps=20000,
        batch_size=4096,
        lr=0.003,
        amp_bf16=True,
    ),
}


def char_ngrams(word: str, minn: int = 3, maxn: int = 6) -> list[str]:
    """§3.2: n-grams of "<word>"; the whole "<word>" is the word's own entry, not an n-gram here."""
    w = f"<{word}>"
    return [
        w[i : i + n] for n in range(minn, maxn + 1) for i in range(len(w) - n + 1) if n < len(w)
    ]


def fnv1a(s: str) -> int:
    """§3.2: the Fowler-Noll-Vo hash (FNV-1a, 32 bit) that maps an n-gram to a bucket."""
    h = 2166136261
    for byte in s.encode("utf-8"):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


class FastText(nn.Module):
    def __init__(self, cfg: Config, V: int = 0):
        super().__init__()
        self.V, self.cfg = V or cfg.vocab, cfg
        self.z = nn.Embedding(self.V + cfg.buckets, cfg.d)  # words, then hashed n-grams: z_g
        self.v = nn.Embedding(self.V, cfg.d)  # context (output) vectors v_c
        nn.init.uniform_(self.z.weight, -1 / cfg.d, 1 / cfg.d)
        nn.init.zeros_(self.v.weight)

    def subword_ids(self, word: str, word_id: int | None) -> list[int]:
        """G_w: the word's own index (if in the vocabulary) and its hashed n-grams."""
        grams = [
            self.V + fnv1a(g) % self.cfg.buckets
            for g in char_ngrams(word, self.cfg.minn, self.cfg.maxn)
        ]
        return ([word_id] if word_id is not None else []) + grams

    def embed(self, ids, mask):  # (N, L), (N, L) -> (N, d)
        return (self.z(ids) * mask[..., None]).sum(1)  # sum over g in G_w

    def forward(self, ids, mask, context, negatives):
        """§3.1 with §3.2's score: l(s(w, c)) + sum_n l(-s(w, n)), l(x) = log(1 + e^-x)."""
        u = self.embed(ids, mask)  # (N, d)
        pos = (u * self.v(context)).sum(-1)  # (N,)
        neg = torch.einsum("nd,nkd->nk", u, self.v(negatives))  # (N, k)
        return (F.softplus(-pos) + F.softplus(neg).sum(1)).mean()


def build_model(cfg: Config) -> nn.Module:
    return FastText(cfg)


def random_strings(n: int, length: int, g: torch.Generator, taken: set) -> list[str]:
    out = []
    while len(out) < n:
        s = "".join(chr(97 + int(c)) for c in torch.randint(26, (length,), generator=g))
        if s not in taken:
            taken.add(s)
            out.append(s)
    return out


def make_corpus(cfg: Config, g: torch.Generator):
    """Families: word = stem + suffix. A word's contexts depend on its stem only. For each stem one
    suffix is held out: those words never appear in the corpus. Returns sentences as word ids."""
    taken: set = set()
    stems, suffixes = (
        random_strings(cfg.n_stems, cfg.stem_len, g, taken),
        random_strings(cfg.n_suffixes, cfg.suffix_len, g, taken),
    )
    held = {(s, s % cfg.n_suffixes) for s in range(cfg.n_stems)}
    family = [
        (s, x) for s in range(cfg.n_stems) for x in range(cfg.n_suffixes) if (s, x) not in held
    ]
    words = [stems[s] + suffixes[x] for s, x in family]
    ctx0 = len(words)
    words += random_strings(cfg.n_stems * cfg.ctx_per_stem + cfg.n_noise, 6, g, taken)
    noise0 = ctx0 + cfg.n_stems * cfg.ctx_per_stem
    n = cfg.n_sents
    f = torch.randint(len(family), (n,), generator=g)  # the family word of each sentence
    stem = torch.tensor([s for s, _ in family])[f]
    cols = [f] + [
        ctx0 + stem * cfg.ctx_per_stem + torch.randint(cfg.ctx_per_stem, (n,), generator=g)
        for _ in range(2)
    ]
    cols += [
        noise0 + torch.randint(cfg.n_noise, (n,), generator=g) for _ in range(cfg.sent_len - 3)
    ]
    sents = torch.stack(cols, 1)
    sents = sents.gather(1, torch.rand(n, cfg.sent_len, generator=g).argsort(1))
    held_words = [(stems[s] + suffixes[x], s) for s, x in sorted(held)]
    return sents, words, [s for s, _ in family], held_words


def padded(lists: list[list[int]]):
    L = max(map(len, lists))
    ids = torch.tensor([x + [0] * (L - len(x)) for x in lists])
    return ids, torch.tensor([[1.0] * len(x) + [0.0] * (L - len(x)) for x in lists])


@torch.no_grad()
def family_retrieval(model: FastText, words, family_stem, held_words, device) -> float:
    """Nearest in-vocabulary family word (cosine) to each held-out word's n-gram vector: same stem?"""
    cand_ids, cand_mask = padded(
        [model.subword_ids(w, i) for i, w in enumerate(words[: len(family_stem)])]
    )
    held_ids, held_mask = padded(
        [model.subword_ids(w, None) for w, _ in held_words]
    )  # n-grams only
    C = F.normalize(model.embed(cand_ids.to(device), cand_mask.to(device)).float(), dim=1)
    H = F.normalize(model.embed(held_ids.to(device), held_mask.to(device)).float(), dim=1)
    nearest = (H @ C.T).argmax(1).cpu()
    return sum(family_stem[j] == s for j, (_, s) in zip(nearest.tolist(), held_words)) / len(
        held_words
    )


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    sents, words, family_stem, held_words = make_corpus(cfg, g)
    vocab = {w: i for i, w in enumerate(words)}
    model = FastText(cfg, len(words)).to(device)
    ids, mask = (
        t.to(device) for t in padded([model.subword_ids(w, i) for i, w in enumerate(words)])
    )  # (V, L)
    noise = (
        torch.bincount(sents.flatten(), minlength=len(words)).float().sqrt()
    )  # sqrt(unigram) noise
    untrained = family_retrieval(model, words, family_stem, held_words, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / cfg.steps)  # linear decay
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    S, B = cfg.sent_len, cfg.batch_size
    start, pairs = time.perf_counter(), 0
    for _ in range(cfg.steps):
        s, i = torch.randint(len(sents), (B,), generator=g), torch.randint(S, (B,), generator=g)
        R = torch.randint(1, cfg.window + 1, (B,), generator=g)  # random window size per centre
        off = torch.randint(1, cfg.window + 1, (B,), generator=g) * (
            torch.randint(2, (B,), generator=g) * 2 - 1
        )
        j = i + off
        ok = (j >= 0) & (j < S) & (off.abs() <= R)
        w_t, w_c = sents[s[ok], i[ok]], sents[s[ok], j[ok]]  # (centre, context) pairs
        neg = torch.multinomial(noise, len(w_t) * cfg.k, True, generator=g).view(-1, cfg.k)
        with torch.autocast(**amp):
            loss = model(ids[w_t.to(device)], mask[w_t.to(device)], w_c.to(device), neg.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        pairs += len(w_t)
    train_s = time.perf_counter() - start
    value = family_retrieval(model, words, family_stem, held_words, device)
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "untrained_value": untrained,
        "word_level_coverage": sum(w in vocab for w, _ in held_words) / len(held_words),
        "params": sum(p.numel() for p in model.parameters()),
        "final_loss": loss.item(),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": pairs / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
