"""fastText runnable: held-out words find their family through n-grams (and not before training),
n-gram extraction as in §3.2, the FNV-1a hash, and the paper preset on the meta device."""

from dataclasses import replace

import torch

from runnable import fasttext as ft


def test_tiny_gate_held_out_words_find_their_family():
    result = ft.train(ft.PRESETS["tiny"])
    assert result["passed"] and result["value"] >= ft.GATE[2], result
    assert result["untrained_value"] < 0.3  # raw n-gram overlap is not enough
    assert result["word_level_coverage"] == 0.0  # no held-out word is in the vocabulary


def test_ngrams_of_where():
    assert ft.char_ngrams("where", 3, 3) == ["<wh", "whe", "her", "ere", "re>"]  # §3.2's example
    grams = ft.char_ngrams("where")  # 3 <= n <= 6
    assert len(grams) == 5 + 4 + 3 + 2 and "<where>" not in grams and "where>" in grams
    assert ft.char_ngrams("her", 3, 3) == [
        "<he",
        "her",
        "er>",
    ]  # "<her>" stays the word's own entry
    model = ft.FastText(replace(ft.PRESETS["tiny"], buckets=1000), V=10)
    ids = model.subword_ids("where", 7)
    assert ids[0] == 7 and len(ids) == 1 + 14 and all(10 <= i < 1010 for i in ids[1:])
    assert model.subword_ids("where", None) == ids[1:]  # an unseen word: n-grams only


def test_fnv1a_reference_values():
    assert ft.fnv1a("") == 0x811C9DC5  # the FNV offset basis
    assert (
        ft.fnv1a("a") == 0xE40C292C and ft.fnv1a("foobar") == 0xBF9CF968
    )  # published FNV-1a test vectors


def test_word_vector_is_the_sum_of_its_ngram_vectors():
    torch.manual_seed(0)
    model = ft.FastText(replace(ft.PRESETS["tiny"], buckets=50, d=4), V=3)
    ids = torch.tensor([[1, 5, 9, 0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert torch.allclose(model.embed(ids, mask)[0], model.z.weight[[1, 5, 9]].sum(0))


def test_paper_preset_on_meta():
    cfg = ft.PRESETS["paper"]
    assert (cfg.d, cfg.minn, cfg.maxn, cfg.buckets) == (300, 3, 6, 2_000_000)
    with torch.device("meta"):
        model = ft.build_model(cfg)
    assert (
        sum(p.numel() for p in model.parameters())
        == (1_000_000 + 2_000_000) * 300 + 1_000_000 * 300
    )
