"""BLEU runnable: the gate, the paper's worked examples, BP cases, no smoothing, and an independent
re-implementation written here (per-sentence dictionaries, logs taken differently) on generated corpora."""

import math

import pytest
import torch

from runnable import bleu as B

REFS = [
    s.split()
    for s in (
        "it is a guide to action that ensures that the military will forever heed party commands",
        "it is the guiding principle which guarantees the military forces always being under the command of the party",
        "it is the practical guide for the army always to heed the directions of the party",
    )
]
CAND1 = "it is a guide to action which ensures that the military always obeys the commands of the party".split()
CAND2 = (
    "it is to insure the troops forever hearing the activity guidebook that party direct".split()
)


def reference_bleu(cands, refss, N=4):
    """Straightforward re-implementation: dictionaries instead of Counters, product instead of log-sum."""
    match, total, c, r = [0] * N, [0] * N, 0, 0
    for cand, refs in zip(cands, refss):
        for n in range(1, N + 1):
            grams = {}
            for i in range(len(cand) - n + 1):
                grams[" ".join(cand[i : i + n])] = grams.get(" ".join(cand[i : i + n]), 0) + 1
            for gram, k in grams.items():
                most = max(
                    sum(" ".join(ref[i : i + n]) == gram for i in range(len(ref) - n + 1))
                    for ref in refs
                )
                match[n - 1] += min(k, most)
                total[n - 1] += k
        c += len(cand)
        lengths = sorted(len(x) for x in refs)
        r += min(lengths, key=lambda L: abs(L - len(cand)))  # sorted: ties go to the shorter
    if 0 in match:
        return 0.0
    geo = math.prod(m / t for m, t in zip(match, total)) ** (1 / N)
    return geo * (1.0 if c > r else math.exp(1 - r / c))


def test_tiny_gate_all_checks_agree():
    r = B.train(B.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= B.GATE[2] and r["checks"] > 100, r
    assert r["params"] == 0


def test_paper_example_2_the_the_the():
    """§2.1, Example 2: seven "the" against two references; "the" is clipped to 2 -> 2/7."""
    cat = [s.split() for s in ("the cat is on the mat", "there is a cat on the mat")]
    assert B.clipped_counts(["the"] * 7, cat, 1) == (2, 7)
    assert B.clipped_counts(["the"] * 7, cat, 2) == (0, 6)


def test_paper_example_1_modified_precisions():
    """§2.1, Example 1: unigram 17/18 and 8/14, bigram 10/17 and 1/13."""
    assert B.clipped_counts(CAND1, REFS, 1) == (17, 18) and B.clipped_counts(CAND2, REFS, 1) == (
        8,
        14,
    )
    assert B.clipped_counts(CAND1, REFS, 2) == (10, 17) and B.clipped_counts(CAND2, REFS, 2) == (
        1,
        13,
    )
    assert B.corpus_bleu([CAND1], [REFS])["bleu"] > B.corpus_bleu([CAND2], [REFS])["bleu"]


def test_brevity_penalty_cases():
    ref = [["a", "b", "c", "d", "e", "f", "g", "h"]]
    assert B.corpus_bleu([ref[0]], [ref])["BP"] == 1.0  # c = r
    short = B.corpus_bleu([ref[0][:6]], [ref])  # c = 6 < r = 8
    assert short["BP"] == pytest.approx(math.exp(1 - 8 / 6), abs=1e-12)
    assert short["bleu"] == pytest.approx(math.exp(1 - 8 / 6), abs=1e-12)  # every p_n = 1
    longer = B.corpus_bleu([ref[0] + ["x", "y"]], [ref])  # c > r: no penalty, precision drops
    assert longer["BP"] == 1.0 and longer["p"][0] == pytest.approx(8 / 10)
    # best match length: the closest reference (12 words -> 11, not 6), ties to the shorter
    assert B.best_match_length(["w"] * 12, [["w"] * 6, ["w"] * 11]) == 11
    assert B.best_match_length(["w"] * 8, [["w"] * 6, ["w"] * 10]) == 6


def test_brevity_penalty_is_corpus_level_not_per_sentence():
    """§2.2.2: r and c are summed over the corpus; a long sentence can pay for a short one."""
    refs = [[list("abcdef")], [list("ghij")]]
    cands = [list("abcdefxy"), list("gh")]  # c = 10 = r
    assert B.corpus_bleu(cands, refs)["BP"] == 1.0


def test_no_smoothing_zero_precision_gives_zero():
    out = B.corpus_bleu([["a", "b", "c", "d"]], [[["a", "x", "c", "y"]]])
    assert out["p"][0] == 0.5 and out["p"][1] == 0.0 and out["bleu"] == 0.0
    assert B.corpus_bleu([["a", "b", "c"]], [[["a", "b", "c"]]])["bleu"] == 0.0  # no 4-grams at all


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_independent_implementation_on_generated_corpora(seed):
    cfg = B.Config(n_sentences=60, seed=seed)
    cands, refs = B.make_corpus(cfg, torch.Generator().manual_seed(seed))
    ours, theirs = B.corpus_bleu(cands, refs)["bleu"], reference_bleu(cands, refs)
    assert 0.05 < theirs < 0.95  # a non-trivial score
    assert abs(ours - theirs) <= 1e-9
    for k in (5, 17, 33):  # and on sub-corpora
        assert (
            abs(B.corpus_bleu(cands[:k], refs[:k])["bleu"] - reference_bleu(cands[:k], refs[:k]))
            <= 1e-9
        )


def test_generated_corpora_exercise_brevity_and_clipping():
    cfg = B.Config(n_sentences=60)
    cands, refs = B.make_corpus(cfg, torch.Generator().manual_seed(0))
    assert (
        B.corpus_bleu(cands[:20], refs[:20])["BP"] < 1.0 or B.corpus_bleu(cands, refs)["BP"] < 1.0
    )
    clipped = sum(
        B.clipped_counts(c, r, 1)[0] < sum(w in {x for ref in r for x in ref} for w in c)
        for c, r in zip(cands, refs)
    )
    assert clipped > 0  # repeated words did get clipped
