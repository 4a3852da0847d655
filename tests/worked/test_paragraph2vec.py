"""Paragraph Vector's worked example (papers/paragraph2vec.yaml › teaching.worked_example): the
width of PV-DM's concatenated input for three context words at the paper's 400 dimensions, the
same step's shapes and parameters in the runnable's PVDM / PVDBOW (tiny and paper presets), the
concatenated vector the classifier reads, and the size of the paragraph matrix for IMDB."""

import torch

from ..conftest import record, runnable, stated_in

R = runnable("paragraph2vec")
EX = record("paragraph2vec").teaching.worked_example
stated = stated_in("paragraph2vec")


def shape(t: torch.Tensor) -> str:
    return f"`{tuple(t.shape)}`"


def test_three_context_words_at_400_dimensions():
    p = q = 400
    width = p + 3 * q
    assert width == 1600
    stated("400 + 3 × 400 = 1,600", "V \\times 1600", "| 400 |")


@torch.no_grad()
def test_the_same_step_in_the_runnable():
    cfg = R.PRESETS["tiny"]
    dm, dbow = R.PVDM(cfg, 10), R.PVDBOW(cfg, 10)
    para = torch.zeros(cfg.batch_size, dtype=torch.long)
    context = torch.zeros(cfg.batch_size, 2 * cfg.k, dtype=torch.long)
    d, w = dm.D(para), dm.W(context)
    h = torch.cat([d, w.flatten(1)], 1)
    logits = dm(para, context)
    assert torch.equal(logits, dm.U(h))
    n_U = sum(x.numel() for x in dm.U.parameters())
    stated(
        shape(d),
        shape(w),
        shape(w.flatten(1)),
        shape(h),
        shape(logits),
        f"{h.size(1)} × {cfg.vocab} + {cfg.vocab} = {n_U:,}",
    )
    assert dbow(para).shape == logits.shape
    stated(f"{shape(dbow.D(para))} → {shape(dbow(para))}")
    both = R.ParagraphVector(cfg, 10).vectors()
    assert both.size(1) == 2 * cfg.p
    assert (
        f"{both.size(1)} numbers per paragraph" in EX.en
        and f"每個段落 {both.size(1)} 個數" in EX.zh_hant
    )
    with torch.device("meta"):
        paper = R.PVDM(R.PRESETS["paper"], 1)
    assert paper.U.in_features == 4400
    stated("400 + 10 × 400 = 4,400")


def test_the_paragraph_matrix_for_imdb():
    n = 25_000 + 25_000 + 50_000
    stated(f"{n:,}", f"{n:,} × 400 = {n * 400:,}")
