"""BERT's worked example (papers/bert.yaml › teaching.worked_example): the 80/10/10 masking
shares of Appendix A.1 and what they mean per sequence, the same shares drawn by the runnable's
`make_batch`, the Figure 2 pair's segments and the BERT-base embedding tables, and the tiny
preset's input and output shapes, all computed here."""

import torch

from ..conftest import runnable, stated_in

R = runnable("bert")
stated = stated_in("bert")


def g(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def test_masking_shares():
    chosen, mask, rnd, keep = 0.15, 0.15 * 0.8, 0.15 * 0.1, 0.15 * 0.1
    assert (round(mask * 100), g(rnd * 100), g(keep * 100)) == (12, "1.5", "1.5")
    stated("15 % × 80 % = 12 %", "1.5 %", "85 %")
    for T in (128, 512):
        stated(g(T * chosen), g(T * mask))
    stated("my dog is [MASK]", "my dog is apple", "my dog is hairy")


def test_the_runnable_draws_the_same_shares():
    cfg = R.PRESETS["tiny"]
    inputs, segments, labels, is_next = R.make_batch(cfg, 20000, torch.Generator().manual_seed(0))
    words = (inputs != R.CLS) & (inputs != R.SEP) | (labels != -100)
    words[:, [0, cfg.sent_len + 1, -1]] = False  # [CLS] and the two [SEP]
    chosen = (labels != -100)[words].float().mean().item()
    masked = (inputs == R.MASK)[words].float().mean().item()
    assert (round(chosen, 2), round(masked, 2)) == (0.15, 0.12)
    assert not (labels[:, [0, cfg.sent_len + 1, -1]] != -100).any()
    stated("20,000", f"{round(chosen, 2)}", f"{round(masked, 2)}")


def test_figure_2_pair_and_the_base_embedding_tables():
    tokens = "[CLS] my dog is cute [SEP] he likes play ##ing [SEP]".split()
    seg = [0] * (tokens.index("[SEP]") + 1)
    seg += [1] * (len(tokens) - len(seg))
    assert (len(tokens), seg.count(0), seg.count(1)) == (11, 6, 5)
    stated("| " + " | ".join(tokens) + " |", "| " + " | ".join("AB"[s] for s in seg) + " |")
    cfg = R.PRESETS["paper"]
    with torch.device("meta"):
        m = R.BERT(cfg)
        x = (
            m.tok(torch.zeros(1, 11, dtype=torch.long))
            + m.seg(torch.tensor([seg]))
            + m.pos(torch.arange(11))
        )
    assert tuple(x.shape) == (1, 11, 768)
    sizes = [(t.num_embeddings, t.weight.numel()) for t in (m.tok, m.seg, m.pos)]
    assert sizes == [(30522, 23_440_896), (2, 1536), (512, 393_216)]
    stated("11 × 768", *(f"{n:,} × 768 = {w:,}" for n, w in sizes), "768 × 2")
    assert m.nsp.weight.shape == (2, 768)


@torch.no_grad()
def test_the_tiny_preset_shapes():
    cfg = R.PRESETS["tiny"]
    inputs, segments, _, _ = R.make_batch(cfg, 4, torch.Generator().manual_seed(0))
    assert inputs.shape[1] == 2 * cfg.sent_len + 3 == 15
    assert segments[0].tolist() == [0] * 8 + [1] * 7
    mlm, nsp = R.BERT(cfg)(inputs, segments)
    assert tuple(mlm.shape[1:]) == (15, cfg.vocab) == (15, 24) and tuple(nsp.shape[1:]) == (2,)
    stated("batch, 15, 24", "batch, 2", "8", "7")
