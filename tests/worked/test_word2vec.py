"""word2vec's worked example (papers/word2vec.yaml › teaching.worked_example): one skip-gram
window with its random radius R, the share of neighbours used at each distance, CBOW's shapes in
the runnable, the unigram^(3/4) noise distribution of a five-word vocabulary (the runnable's
`Word2Vec.set_counts`), one negative-sampling loss with k = 2, and the Huffman path lengths the
runnable's `huffman` gives the same counts."""

import math

import torch
import torch.nn.functional as F

from ..conftest import record, runnable, stated_in

R = runnable("word2vec")
EX = record("word2vec").teaching.worked_example
WORDS, COUNTS = ["the", "on", "cat", "sat", "mat"], [16.0, 8.0, 4.0, 2.0, 1.0]


stated = stated_in("word2vec")


def test_one_skip_gram_window():
    sent, t, C = "the cat sat on the mat".split(), 2, 2
    for radius in range(1, C + 1):
        pairs = [
            f"sat → {sent[t + j]}"
            for j in range(-radius, radius + 1)
            if j and 0 <= t + j < len(sent)
        ]
        stated(f"| {radius} | " + ", ".join(pairs) + " |")
    used = lambda d, C: sum(d <= r for r in range(1, C + 1)) / C  # R uniform in 1..C
    assert (used(1, 2), used(2, 2), used(1, 10), used(10, 10)) == (1.0, 0.5, 1.0, 0.1)
    stated("$(C - d + 1)/C$", "1.0", "0.1")


def test_cbow_shapes_in_the_runnable():
    cfg = R.Config(arch="cbow", loss="softmax")
    m = R.Word2Vec(cfg)
    context = torch.zeros(256, 2 * cfg.C, dtype=torch.long)
    mask = torch.ones(256, 2 * cfg.C, dtype=torch.bool)
    vecs = m.v(context)
    h = (vecs * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert m(torch.zeros(256, dtype=torch.long), context, mask, None).dim() == 0
    stated(f"`{tuple(context.shape)}`", f"`{tuple(vecs.shape)}`", f"`{tuple(h.shape)}`", "$C = 4$")


def test_noise_distribution_of_a_tiny_vocabulary():
    m = R.Word2Vec(R.Config(), "neg")
    counts = torch.tensor(COUNTS)
    m.set_counts(counts)
    unigram, powered = counts / counts.sum(), m.noise
    p_n = powered / powered.sum()
    for w, c, u, pw, p in zip(WORDS, COUNTS, unigram, powered, p_n):
        stated(f"| {w} | {c:.0f} | {u:.3f} | {pw:.3f} | {p:.3f} |")
    assert p_n[0] < unigram[0] and p_n[-1] > unigram[-1]  # flatter than the unigram


def test_one_negative_sampling_loss():
    pos, negs = torch.tensor(1.5), torch.tensor([0.4, -0.8])  # v'_cat.v_sat; the, mat
    terms = [-F.logsigmoid(pos), *(-F.logsigmoid(-s) for s in negs)]
    total = sum(terms)
    stated(*(f"{x:.4f}" for x in terms), f"= {total:.4f}")
    stated(f"{torch.sigmoid(pos):.3f}", f"{torch.sigmoid(negs[0]):.3f}")


def test_huffman_path_lengths():
    nodes, codes = R.huffman(COUNTS)
    lengths = (codes >= 0).sum(1).tolist()
    assert lengths == [1, 2, 3, 4, 4]
    en_list, zh_list = (
        ", ".join(map(str, lengths[:-1])) + f" and {lengths[-1]}",
        ", ".join(map(str, lengths)),
    )
    assert en_list in EX.en and zh_list in EX.zh_hant
    assert round(math.log2(1e6)) == 20
    stated("\\approx 20", "1,000,000")
