"""ULMFiT runnable: the gate (pre-trained beats from scratch), STLR against Eq. 3, discriminative rates,
gradual unfreezing, concat pooling, the paper's AWD-LSTM sizes on the meta device."""

import math
from dataclasses import replace

import torch
from torch import nn

from runnable import ulmfit as U
from tests.conftest import figure


def test_tiny_gate_pretrained_beats_scratch():
    r = U.train(U.PRESETS["tiny"])
    assert r["passed"] and r["value"] >= U.GATE[2], r
    assert r["value"] - r["scratch_accuracy"] >= 0.2, r  # what pre-training buys with 20 labels


def test_slanted_triangular_lr_follows_eq_3():
    T, eta_max, cut_frac, ratio = 1000, 0.01, 0.1, 32
    cut = 100
    lrs = [U.stlr(t, T, eta_max, cut_frac, ratio) for t in range(T)]
    assert math.isclose(lrs[0], eta_max / ratio) and math.isclose(
        lrs[cut], eta_max
    )  # from eta/32 up to eta
    for t in (0, 37, 99, 100, 450, 999):
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
        assert math.isclose(lrs[t], eta_max * (1 + p * (ratio - 1)) / ratio)
    rise, fall = torch.tensor(lrs[: cut + 1]).diff(), torch.tensor(lrs[cut:]).diff()
    assert (
        (rise > 0).all() and (fall < 0).all() and rise[0] > -fall[0] * 8
    )  # short steep rise, long decay
    assert math.isclose(
        U.stlr(T, T, eta_max, cut_frac, ratio), eta_max / ratio
    )  # back to eta/32 at t = T


def test_discriminative_learning_rates_divide_by_2_6_per_layer():
    model = U.build_model(U.PRESETS["tiny"])
    opt = torch.optim.Adam([{"params": p} for p in model.groups()])
    U.set_lrs(opt, 0.01, 2.6)
    lrs = [g["lr"] for g in opt.param_groups]  # embedding, 3 LSTMs, head
    assert len(lrs) == 5 and math.isclose(lrs[-1], 0.01)
    assert all(math.isclose(lo, hi / 2.6) for lo, hi in zip(lrs, lrs[1:]))


def test_gradual_unfreezing_trains_only_the_head_in_the_first_epoch():
    torch.manual_seed(0)
    cfg = replace(U.PRESETS["tiny"], clf_epochs=1)
    clf = U.build_model(cfg)
    before = [p.detach().clone() for p in clf.parameters()]
    x, y = U.make_sentences(cfg, 20, torch.Generator().manual_seed(0), target=True)
    U.train_classifier(cfg, clf, x, y, "cpu", dict(device_type="cuda", enabled=False))
    changed = [not torch.equal(a, p) for a, p in zip(before, clf.parameters())]
    n_head = len(list(clf.head.parameters()))
    assert all(changed[-n_head:][i] for i in (0, 2, 4, 6)) and not any(changed[:-n_head])


def test_concat_pooling_is_last_max_mean():
    torch.manual_seed(0)
    clf = U.build_model(U.PRESETS["tiny"]).eval()
    seen = {}
    clf.head[0].register_forward_hook(lambda m, inp, out: seen.setdefault("h_c", inp[0]))
    tokens = torch.randint(1, 40, (3, 9))
    with torch.no_grad():
        clf(tokens)
        H, _ = clf.lm.encode(tokens)  # (B, T, emb)
    expected = torch.cat([H[:, -1], H.max(1).values, H.mean(1)], -1)
    assert seen["h_c"].shape == (3, 3 * 32) and torch.allclose(seen["h_c"], expected)


def test_weight_drop_lstm_equals_nn_lstm_in_eval_and_drops_in_training():
    torch.manual_seed(0)
    layer = U.WeightDropLSTM(5, 7, weight_drop=0.5)
    ref = nn.LSTM(5, 7, batch_first=True)
    ref.load_state_dict(layer.lstm.state_dict())
    x = torch.randn(2, 6, 5)
    assert (layer.eval()(x)[0] - ref(x)[0]).abs().max() <= 1e-5
    layer.train()
    assert not torch.allclose(layer(x)[0], layer(x)[0])
    assert torch.equal(layer.lstm.weight_hh_l0, ref.weight_hh_l0)  # the stored weights stay intact


def test_paper_preset_is_the_stated_awd_lstm():
    cfg = U.PRESETS["paper"]
    assert (cfg.emb, cfg.layers, cfg.hidden) == (
        figure("ulmfit", "emb-size"),
        figure("ulmfit", "layers"),
        figure("ulmfit", "hidden-size"),
    )
    with torch.device("meta"):
        model = U.build_model(cfg)
    sizes = [(r.lstm.input_size, r.lstm.hidden_size) for r in model.lm.rnns]
    assert sizes == [(400, 1150), (1150, 1150), (1150, 400)]
    assert model.lm.decoder.weight is model.lm.embed.weight
