"""BLEU: corpus-level modified n-gram precision with a brevity penalty.

Paper: BLEU: a Method for Automatic Evaluation of Machine Translation (Papineni et al., 2002) https://doi.org/10.3115/1073083.1073135
A candidate n-gram only counts as often as it occurs in the single reference that holds it most
(clipping, §2.1); clipped counts and n-gram totals are summed over the whole corpus before
dividing (§2.1.1). BLEU = BP * exp(sum_n w_n log p_n) with w_n = 1/4 for n = 1..4, and
BP = exp(1 - r/c) when the candidate corpus (length c) is shorter than the best-match reference
length r, else 1 (§2.2.2). No smoothing: one empty precision makes BLEU 0. BLEU is an algorithm,
not a model: build_model returns a parameter-free module and "training" is a check of the code.
Gate: bleu-agreement = share of checks passed (the paper's worked examples, a second counting
route on generated corpora, invariances) >= 1.0. Presets differ only in corpus size.
Run: python -m runnable.bleu --preset tiny
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

GATE = ("bleu-agreement", ">=", 1.0)


@dataclass
class Config:
    N: int = 4  # highest n-gram order (§2.2: N = 4)
    n_sentences: int = 200  # candidate sentences per generated corpus
    n_refs: int = 3  # references per candidate (the paper's test corpora have 2-4)
    vocab: int = 30  # small vocabulary so that n-grams repeat and clipping matters
    min_len: int = 3
    max_len: int = 20
    n_corpora: int = 20  # generated corpora checked
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(n_sentences=500, n_refs=4, vocab=1000, max_len=40, n_corpora=20),
    "gpu": Config(n_sentences=5000, n_refs=4, vocab=5000, max_len=60, n_corpora=50),
}


def ngrams(words: list, n: int) -> Counter:
    """Counts of every n-gram (as a tuple) in one sentence."""
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def clipped_counts(cand: list, refs: list[list], n: int) -> tuple[int, int]:
    """§2.1: Count_clip = min(Count, Max_Ref_Count); returns (sum of clipped counts, number of n-grams)."""
    counts = ngrams(cand, n)
    max_ref = Counter()
    for ref in refs:
        max_ref |= ngrams(ref, n)  # element-wise max over references
    clipped = sum(min(c, max_ref[g]) for g, c in counts.items())
    return clipped, sum(counts.values())


def best_match_length(cand: list, refs: list[list]) -> int:
    """§2.2.2: the reference length closest to the candidate's (ties: the shorter one)."""
    return min((abs(len(r) - len(cand)), len(r)) for r in refs)[1]


def corpus_bleu(candidates: list[list], references: list[list[list]], N: int = 4) -> dict:
    """Corpus BLEU (§2.1.1, §2.3): precisions pooled over all sentences, then one BP for the corpus."""
    num, den = [0] * N, [0] * N
    c = r = 0
    for cand, refs in zip(candidates, references, strict=True):
        for n in range(1, N + 1):
            m, t = clipped_counts(cand, refs, n)
            num[n - 1] += m
            den[n - 1] += t
        c += len(cand)
        r += best_match_length(cand, refs)
    p = [m / t if t else 0.0 for m, t in zip(num, den)]  # p_n, modified n-gram precision
    BP = 1.0 if c > r else math.exp(1 - r / c) if c else 0.0  # §2.2.2: brevity penalty
    w = 1.0 / N  # uniform weights w_n
    log_mean = sum(w * math.log(p_n) for p_n in p) if min(p) > 0 else -math.inf
    return {"bleu": BP * math.exp(log_mean), "p": p, "BP": BP, "c": c, "r": r}


class BLEU(nn.Module):
    """The metric as a (parameter-free) module, so that the runnable contract holds."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.N = cfg.N

    def forward(self, candidates, references) -> float:
        return corpus_bleu(candidates, references, self.N)["bleu"]


def build_model(cfg: Config) -> nn.Module:
    return BLEU(cfg)


def make_corpus(cfg: Config, g: torch.Generator):
    """References are random sentences; each candidate copies one reference with some words replaced,
    dropped or repeated, so that precisions and lengths vary and clipping is exercised."""
    rand = lambda hi: int(torch.randint(hi, (1,), generator=g))
    candidates, references = [], []
    for _ in range(cfg.n_sentences):
        refs = [
            [
                f"w{rand(cfg.vocab)}"
                for _ in range(cfg.min_len + rand(cfg.max_len - cfg.min_len + 1))
            ]
            for _ in range(cfg.n_refs)
        ]
        cand, noise = [], torch.rand(1, generator=g).item()
        for word in refs[rand(cfg.n_refs)]:
            u = torch.rand(1, generator=g).item()
            if u < noise * 0.3:
                cand.append(f"w{rand(cfg.vocab)}")  # substitution
            elif u < noise * 0.5:
                continue  # deletion (shorter candidates -> BP < 1)
            elif u < noise * 0.6:
                cand += [word, word]  # repetition (clipping)
            else:
                cand.append(word)
        candidates.append(cand or [f"w{rand(cfg.vocab)}"])
        references.append(refs)
    return candidates, references


def slow_precision(cand: list, refs: list[list], n: int) -> tuple[int, int]:
    """A second counting route: walk the candidate's n-grams in order and let each one use up one
    occurrence in every reference; it matches while some reference still has an unused copy."""
    left = [[tuple(ref[i : i + n]) for i in range(len(ref) - n + 1)] for ref in refs]
    matched = total = 0
    for i in range(len(cand) - n + 1):
        gram, total = tuple(cand[i : i + n]), total + 1
        hit = [gram in lst for lst in left]
        matched += any(hit)
        for lst, h in zip(left, hit):
            if h:
                lst.remove(gram)
    return matched, total


def paper_examples() -> list[bool]:
    """§2.1's worked examples (lower-cased, punctuation dropped), checked exactly."""
    refs = [
        s.split()
        for s in (
            "it is a guide to action that ensures that the military will forever heed party commands",
            "it is the guiding principle which guarantees the military forces always being under the command of the party",
            "it is the practical guide for the army always to heed the directions of the party",
        )
    ]
    c1 = "it is a guide to action which ensures that the military always obeys the commands of the party".split()
    c2 = "it is to insure the troops forever hearing the activity guidebook that party direct".split()
    cat = [s.split() for s in ("the cat is on the mat", "there is a cat on the mat")]
    return [
        clipped_counts(c1, refs, 1) == (17, 18),
        clipped_counts(c2, refs, 1) == (8, 14),
        clipped_counts(c1, refs, 2) == (10, 17),
        clipped_counts(c2, refs, 2) == (1, 13),
        clipped_counts(["the"] * 7, cat, 1) == (2, 7),
    ]


def train(cfg: Config, device: str = "cpu") -> dict:
    """No training: run every check and report the share that agrees (1.0 = all)."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    metric = build_model(cfg)
    checks, words = paper_examples(), 0
    for _ in range(cfg.n_corpora):
        cands, refs = make_corpus(cfg, g)
        words += sum(map(len, cands))
        out = corpus_bleu(cands, refs, cfg.N)
        for n in range(1, cfg.N + 1):  # pooled precision by the second route
            m, t = map(sum, zip(*(slow_precision(c, r, n) for c, r in zip(cands, refs))))
            checks.append(abs(out["p"][n - 1] - m / t) <= 1e-12)
        checks.append(math.isclose(metric(cands, refs), out["bleu"], rel_tol=0, abs_tol=1e-12))
        shuffled = [r[::-1] for r in refs]  # reference order must not matter
        checks.append(abs(corpus_bleu(cands, shuffled, cfg.N)["bleu"] - out["bleu"]) <= 1e-12)
        ideal = [r[0] for r in refs]  # a candidate equal to a reference scores 1
        checks.append(abs(corpus_bleu(ideal, refs, cfg.N)["bleu"] - 1.0) <= 1e-12)
        checks.append(0.0 <= out["bleu"] <= 1.0 and 0.0 < out["BP"] <= 1.0)
    value = sum(checks) / len(checks)
    seconds = time.perf_counter() - start
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": 0,
        "checks": len(checks),
        "seconds": seconds,
        "tokens_per_s": words / seconds,
        "model_flops_per_s": 0.0,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
