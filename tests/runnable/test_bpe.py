"""BPE runnable: the held-out gate, the paper's two toy examples (Algorithm 1 and Figure 1), segmenting
by rank equals applying the merges in order, determinism, and the fall-back to characters."""

import random

import torch

from runnable import bpe as B


def test_tiny_held_out_text_round_trips_and_compresses():
    r = B.train(B.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= B.GATE[2], r
    assert r["lossless"] and r["unknown_symbols"] == 0 and r["merges"] == 400
    assert r["oov_rate"] >= 0.2 and r["oov_chars_per_token"] >= 2.5, (
        r
    )  # unseen words become a few subwords


def test_algorithm_1_toy_dictionary():
    # what the paper's Algorithm 1 prints for its dictionary, run as printed (Python 3, insertion-ordered dicts)
    bpe = B.BPE().learn({"low": 5, "lower": 2, "newest": 6, "widest": 3}, n_merges=10, min_count=1)
    assert bpe.merges == [
        ("e", "s"),
        ("es", "t"),
        ("est", "</w>"),
        ("l", "o"),
        ("lo", "w"),
        ("n", "e"),
        ("ne", "w"),
        ("new", "est</w>"),
        ("low", "</w>"),
        ("w", "i"),
    ]
    assert bpe.segment("widest") == ["wi", "d", "est</w>"] and bpe.segment("newest") == [
        "newest</w>"
    ]


def test_figure_1_merges_and_the_unseen_word_lower():
    vocab = {tuple(w) + (B.EOW,): 1 for w in ("low", "lowest", "newer", "wider")}
    figure_1 = [("r", B.EOW), ("l", "o"), ("lo", "w"), ("e", "r</w>")]
    for pair in figure_1:  # each is a most frequent pair at its step
        stats = B.get_stats(vocab)
        assert stats[pair] == max(stats.values()) == 2
        vocab = B.merge_vocab(pair, vocab)
    assert B.BPE(figure_1).segment("lower") == ["low", "er</w>"]  # §3.2: 'lower' -> 'low er·'
    ours = B.BPE().learn({"low": 1, "lowest": 1, "newer": 1, "wider": 1}, n_merges=4, min_count=1)
    assert ours.merges == [
        ("l", "o"),
        ("lo", "w"),
        ("e", "r"),
        ("er", B.EOW),
    ]  # ties broken the other way
    assert ours.segment("lower") == ["low", "er</w>"]  # same segmentation


def apply_in_order(word: str, merges) -> list:
    """The oracle: characters + </w>, then every merge operation in the learned order."""
    symbols = tuple(word) + (B.EOW,)
    for pair in merges:
        symbols = B.merge_word(symbols, pair)
    return list(symbols)


def test_segmenting_by_rank_equals_applying_merges_in_order_and_is_deterministic():
    cfg = B.Config(n_train_words=3000, n_merges=150)
    words = B.make_language(cfg, random.Random(0))(3000)
    counts = {w: words.count(w) for w in dict.fromkeys(words)}
    bpe = B.BPE().learn(counts, cfg.n_merges)
    again = B.BPE().learn(dict(counts), cfg.n_merges)
    assert bpe.merges == again.merges and len(bpe.merges) == 150
    unseen = B.make_language(cfg, random.Random(1))(500) + ["aaaa", "papapapa", "zzzz"]
    for w in unseen:
        assert bpe.segment(w) == apply_in_order(w, bpe.merges), w
        assert "".join(bpe.segment(w)) == w + B.EOW


def test_unknown_characters_fall_back_to_single_symbols():
    bpe = B.BPE().learn({"low": 5, "lower": 2, "newest": 6, "widest": 3}, n_merges=10, min_count=1)
    assert bpe.segment("xyz") == ["x", "y", "z", "</w>"]  # nothing learned applies: characters
    assert bpe.segment("lowxyz") == ["low", "x", "y", "z", "</w>"]
    tokens = bpe.encode("low xyz newest")
    assert B.BPE.decode(tokens) == "low xyz newest"
    assert [t for t in tokens if t not in bpe.symbols] == [
        "x",
        "y",
        "z",
    ]  # counted as unknown by train()


def test_build_model_has_no_parameters_even_on_meta():
    with torch.device("meta"):
        model = B.build_model(B.PRESETS["paper"])
    assert sum(p.numel() for p in model.parameters()) == 0
