"""DistilBERT runnable: tiny gate (retained accuracy), the paper's parameter count, initialisation, triple loss."""

import torch
import torch.nn.functional as F
from torch import nn

from runnable import distilbert as D
from tests.conftest import figure


def test_tiny_student_retains_the_teachers_held_out_accuracy():
    r = D.train(D.PRESETS["tiny"])
    assert r["passed"], r
    assert r["value"] >= D.GATE[2] and r["teacher_accuracy"] > 0.6
    assert r["teacher_params"] > 1.8 * r["params"]  # the student has half the layers


def test_paper_preset_within_two_percent_of_66m():
    with torch.device("meta"):
        n = sum(p.numel() for p in D.build_model(D.PRESETS["paper"]).parameters())
    assert abs(n / figure("distilbert", "params") - 1) <= 0.02  # 66,985,530 with the MLM head


def test_student_starts_from_every_other_teacher_layer():
    cfg = D.Config(L=2)
    teacher, student = D.MLMEncoder(cfg, 4), D.build_model(cfg)
    D.init_from_teacher(student, teacher)
    assert not hasattr(student, "seg") and not hasattr(
        student, "pooler"
    )  # no token types, no pooler
    for s, t in [(0, 0), (1, 2)]:
        for (n1, p1), (n2, p2) in zip(
            student.layers[s].named_parameters(), teacher.layers[t].named_parameters()
        ):
            assert n1 == n2 and torch.equal(p1, p2)
    assert torch.equal(student.tok.weight, teacher.tok.weight)


def test_triple_loss_terms():
    torch.manual_seed(0)
    cfg = D.PRESETS["tiny"]
    s_logits, t_logits = torch.randn(2, 5, cfg.vocab), torch.randn(2, 5, cfg.vocab)
    hidden = torch.randn(2, 5, cfg.H)
    labels = torch.full((2, 5), -100)
    labels[0, 1], labels[1, 3] = 7, 9
    chosen = labels != -100
    got = D.triple_loss(
        cfg, s_logits, t_logits, hidden, 3 * hidden, labels
    )  # same direction: L_cos = 0
    T = cfg.T
    L_ce = (
        F.kl_div(
            F.log_softmax(s_logits[chosen] / T, -1),
            F.softmax(t_logits[chosen] / T, -1),
            reduction="batchmean",
        )
        * T
        * T
    )
    H_t = (
        -(F.softmax(t_logits[chosen] / T, -1) * F.log_softmax(t_logits[chosen] / T, -1))
        .sum(-1)
        .mean()
        * T
        * T
    )
    L_mlm = F.cross_entropy(s_logits[chosen], labels[chosen])
    assert torch.isclose(got, cfg.alpha_ce * (L_ce + H_t) + cfg.alpha_mlm * L_mlm, atol=1e-5)


def test_encoder_layer_equals_torch_gelu_layer():
    torch.manual_seed(0)
    ours = D.EncoderLayer(32, 4, 64, dropout=0.0).eval()
    theirs = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation="gelu", batch_first=True
    ).eval()
    with torch.no_grad():
        theirs.self_attn.in_proj_weight.copy_(
            torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight])
        )
        theirs.self_attn.in_proj_bias.copy_(
            torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias])
        )
        for a, b in [
            (ours.W_o, theirs.self_attn.out_proj),
            (ours.W_1, theirs.linear1),
            (ours.W_2, theirs.linear2),
            (ours.norm1, theirs.norm1),
            (ours.norm2, theirs.norm2),
        ]:
            b.weight.copy_(a.weight), b.bias.copy_(a.bias)
    x = torch.randn(2, 6, 32)
    assert (ours(x) - theirs(x)).abs().max() <= 1e-5
