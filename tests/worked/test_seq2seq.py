"""seq2seq's worked example (papers/seq2seq.yaml › teaching.worked_example): the shapes of a
3-token source and a teacher-forced target through the runnable's `paper` preset (built on the
meta device), where its 384M parameters sit, and the source-target distances with and without
reversing the source."""

import torch

from ..conftest import record, runnable, stated_in

S = runnable("seq2seq")
EX = record("seq2seq").teaching.worked_example
CFG = S.PRESETS["paper"]
stated = stated_in("seq2seq")


def n(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_shapes_of_a_three_token_source():
    assert (CFG.layers, CFG.hidden, CFG.emb, CFG.vocab_in, CFG.vocab_out) == (
        4,
        1000,
        1000,
        160_000,
        80_000,
    )
    with torch.device("meta"):
        net = S.Seq2Seq(CFG)
        x, y_in = torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long)
        emb = net.src_embed(x)
        h, c = net.encode(x)
        logits = net(x, y_in)
    fmt = lambda t: "$(" + ", ".join(map(str, t.shape)) + ")$"
    assert fmt(h) == fmt(c) == "$(4, 1, 1000)$"
    stated(
        f"| `x` | {fmt(x)} |",
        f"| `src_embed(x)` | {fmt(emb)} |",
        fmt(h),
        f"| `y_in` | {fmt(y_in)} |",
        f"| `forward(x, y_in)` | {fmt(logits)} |",
        "160,000",
        "80,000",
    )


def test_where_the_parameters_sit():
    with torch.device("meta"):
        net = S.Seq2Seq(CFG)
    lstm = 4 * 4 * (1000 + 1000) * 1000 + 4 * 2 * 4 * 1000
    assert n(net.encoder) == n(net.decoder) == lstm == 32_032_000
    assert n(net.src_embed) == 160_000_000 and n(net.tgt_embed) == 80_000_000
    assert n(net.out) == 80_080_000
    assert n(net) == 384_144_000
    stated(
        f"{n(net.src_embed):,}",
        f"{n(net.tgt_embed):,}",
        f"{lstm:,}",
        f"{n(net.out):,}",
        f"{n(net):,}",
        f"{2 * lstm:,}",
        "384M",
        "64M",
        r"$4 \times 4 \times (1000 + 1000) \times 1000$",
    )


def test_reversal_keeps_the_mean_distance_and_shortens_the_first():
    T = 3
    write = {j: T + 1 + j for j in range(T)}  # target word j is written at step T+1+j
    read_in_order = {j: 1 + j for j in range(T)}  # source word j read at step 1+j
    read_reversed = {j: T - j for j in range(T)}  # c, b, a: a (j = 0) is read at step T
    plain = [write[j] - read_in_order[j] for j in range(T)]
    rev = [write[j] - read_reversed[j] for j in range(T)]
    assert plain == [3, 3, 3] and rev == [1, 3, 5]
    assert sum(plain) / T == sum(rev) / T == 3
    stated("1–3", "4–6")
    assert "3, 3 and 3 steps" in EX.en and "1, 3 and 5 steps" in EX.en
    assert "3、3、3 步" in EX.zh_hant and "1、3、5 步" in EX.zh_hant
