"""ULMFiT: pre-train a language model, fine-tune it on the target text, then fine-tune a classifier.

Paper: Universal Language Model Fine-tuning for Text Classification (Howard et al., 2018) https://arxiv.org/abs/1801.06146
Three stages (§3): (a) train an AWD-LSTM language model on general-domain text; (b) fine-tune it on the task's
unlabelled text with discriminative learning rates (eta^{l-1} = eta^l / 2.6, §3.2) and slanted triangular ones
(Eq. 3); (c) add two linear blocks on h_c = [h_T, maxpool(H), meanpool(H)] (§3.3), train with gradual unfreezing.
Data: each sentence has a hidden topic (6 topics of 10 words, mixed with neutral words), label = topic % 2.
Only 20 sentences are labelled: many topic words are never seen with a label, but the LM has learnt which go together.
Gate: held-out accuracy of the pre-trained classifier >= 0.9 (tiny ~1.0); from scratch ~0.5-0.7.
Run: python -m runnable.ulmfit --preset tiny
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("pretrained-accuracy", ">=", 0.9)
EOS, N_SPECIAL = 0, 1


@dataclass
class Config:
    emb: int = 32  # 400 in the paper (§4)
    hidden: int = 64  # 1150
    layers: int = 3  # 3
    vocab: int = 0  # 0: set by the generated text (the paper states no size; 60k in "paper")
    n_topics: int = 6  # hidden topics; the label is topic % 2
    n_words: int = 10  # words per topic
    n_neutral: int = 10  # neutral words per domain
    p_topical: float = 0.5  # share of topic words in a sentence
    sent_len: int = 12
    weight_drop: float = 0.2  # DropConnect on W_hh (0.5, §4)
    dropout: float = 0.1  # one rate for every other dropout (0.4 / 0.3 / 0.4 / 0.05 in §4)
    n_general: int = 3000  # general-domain sentences (Wikitext-103 in the paper)
    n_target: int = 1000  # unlabelled target-domain sentences
    n_labelled: int = 20
    n_test: int = 1000
    bptt: int = 48  # 70
    batch_size: int = 32
    lm_epochs: int = 3  # (a) general-domain LM pre-training
    ft_epochs: int = 2  # (b) target-domain LM fine-tuning
    clf_epochs: int = 20  # (c) classifier epochs (one more layer unfrozen each epoch, then all)
    lm_lr: float = 3e-2  # pre-training learning rate, one for all layers
    lr: float = 1e-2  # eta_max of STLR when fine-tuning (0.01)
    cut_frac: float = 0.1  # STLR (Eq. 3)
    ratio: float = 32.0
    decay: float = 2.6  # discriminative fine-tuning: eta^{l-1} = eta^l / 2.6
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # §4: AWD-LSTM, embedding size 400, 3 layers, 1150 hidden activations, BPTT 70, batch size 64.
    "paper": Config(
        emb=400,
        hidden=1150,
        layers=3,
        vocab=60000,
        weight_drop=0.5,
        dropout=0.4,
        bptt=70,
        batch_size=64,
    ),
    "gpu": Config(
        emb=400,
        hidden=1150,
        n_words=500,
        n_neutral=2000,
        sent_len=40,
        n_general=200_000,
        n_target=20_000,
        n_labelled=100,
        bptt=70,
        batch_size=128,
        amp_bf16=True,
    ),
}


def stlr(t: int, T: int, eta_max: float, cut_frac: float = 0.1, ratio: float = 32.0) -> float:
    """Eq. 3: slanted triangular learning rate at iteration t of T: a short linear rise, a long linear decay."""
    cut = max(1, math.floor(T * cut_frac))  # (at least 1 for very short runs)
    p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
    return eta_max * (1 + p * (ratio - 1)) / ratio


class WeightDropLSTM(nn.Module):
    """AWD-LSTM's layer: nn.LSTM whose W_hh gets DropConnect once per forward pass (via functional_call)."""

    def __init__(self, n_in: int, n_hid: int, weight_drop: float):
        super().__init__()
        self.lstm, self.weight_drop = nn.LSTM(n_in, n_hid, batch_first=True), weight_drop

    def forward(self, x, state=None):  # (B, T, n_in) -> (B, T, n_hid)
        W_hh = F.dropout(self.lstm.weight_hh_l0, self.weight_drop, self.training)
        return torch.func.functional_call(self.lstm, {"weight_hh_l0": W_hh}, (x, state))


class LanguageModel(nn.Module):
    """AWD-LSTM encoder (embedding + 3 LSTMs) with a tied softmax decoder."""

    def __init__(self, cfg: Config):
        super().__init__()
        V, self.p = (
            cfg.vocab or N_SPECIAL + cfg.n_topics * cfg.n_words + 2 * cfg.n_neutral,
            cfg.dropout,
        )
        self.embed = nn.Embedding(V, cfg.emb)
        sizes = [cfg.emb] + [cfg.hidden] * (cfg.layers - 1) + [cfg.emb]
        self.rnns = nn.ModuleList(
            WeightDropLSTM(sizes[l], sizes[l + 1], cfg.weight_drop)
            for l in range(cfg.layers)  # noqa: E741 (layer l, as in the paper)
        )
        self.decoder = nn.Linear(cfg.emb, V)
        self.decoder.weight = self.embed.weight  # weight tying

    def encode(self, tokens, states=None):  # (B, T) -> H (B, T, emb)
        x, new = self.embed(tokens), []
        for l, rnn in enumerate(self.rnns):  # noqa: E741 (layer l, as in the paper)
            x = F.dropout(x, self.p, self.training)
            x, s = rnn(x, None if states is None else states[l])
            new.append(s)
        return x, new

    def forward(self, tokens, states=None):
        H, states = self.encode(tokens, states)
        return self.decoder(F.dropout(H, self.p, self.training)), states  # (B, T, V)

    def groups(self):  # bottom (embedding) to top, for §3.2
        return [[self.embed.weight, self.decoder.bias]] + [list(r.parameters()) for r in self.rnns]


class Classifier(nn.Module):
    """§3.3: concat pooling, then two linear blocks (BatchNorm, dropout, ReLU in between)."""

    def __init__(self, cfg: Config, lm: LanguageModel):
        super().__init__()
        self.lm, d, p = lm, 3 * cfg.emb, cfg.dropout  # §4: hidden layer of size 50
        self.head = nn.Sequential(
            nn.BatchNorm1d(d),
            nn.Dropout(p),
            nn.Linear(d, 50),
            nn.ReLU(),
            nn.BatchNorm1d(50),
            nn.Dropout(p),
            nn.Linear(50, 2),
        )

    def forward(self, tokens):  # (B, T)
        H, _ = self.lm.encode(tokens)  # (B, T, emb)
        h_c = torch.cat(
            [H[:, -1], H.max(1).values, H.mean(1)], -1
        )  # [h_T, maxpool(H), meanpool(H)]
        return self.head(h_c)  # (B, 2) logits

    def groups(self):
        return self.lm.groups() + [list(self.head.parameters())]


def build_model(cfg: Config) -> nn.Module:
    return Classifier(cfg, LanguageModel(cfg))


def make_sentences(cfg: Config, n: int, g: torch.Generator, target: bool):
    """Each sentence has a hidden topic z; its topic words all come from z's words, and its label is z % 2.
    The target domain draws neutral words from its own set, the general domain from both sets."""
    z, shape = torch.randint(cfg.n_topics, (n,), generator=g), (n, cfg.sent_len)
    topical = N_SPECIAL + z[:, None] * cfg.n_words + torch.randint(cfg.n_words, shape, generator=g)
    first = N_SPECIAL + cfg.n_topics * cfg.n_words + (cfg.n_neutral if target else 0)
    neutral = first + torch.randint(
        2 * cfg.n_neutral if not target else cfg.n_neutral, shape, generator=g
    )
    is_topical = torch.rand(shape, generator=g) < cfg.p_topical
    is_topical[:, 0] = True  # at least one topic word,
    perm = torch.rand(shape, generator=g).argsort(1)  # ... anywhere in the sentence
    return torch.where(is_topical.gather(1, perm), topical, neutral), z % 2  # (n, T), (n,)


def set_lrs(opt, eta: float, decay: float):
    """Discriminative fine-tuning (§3.2): the top group gets eta, each group below 1/2.6 of the one above."""
    for l, group in enumerate(reversed(opt.param_groups)):  # noqa: E741 (layer l, as in the paper); l = 0 is the top group
        group["lr"] = eta / decay**l


def train_lm(cfg, lm, sentences, epochs, lr, decay, device, amp) -> int:
    """Stages (a) and (b): next-word prediction on a stream of sentences with STLR; (b) adds discriminative lrs."""
    stream = torch.cat([sentences, torch.full((len(sentences), 1), EOS)], 1).flatten()
    data = stream[: stream.numel() // cfg.batch_size * cfg.batch_size].view(cfg.batch_size, -1)
    opt = torch.optim.Adam([{"params": p} for p in lm.groups()], betas=(0.7, 0.99))
    starts = list(range(0, data.size(1) - 1, cfg.bptt))
    T, t, tokens = epochs * len(starts), 0, 0
    lm.train()
    for _ in range(epochs):
        states = None
        for i in starts:
            y = data[:, i + 1 : i + 1 + cfg.bptt].to(device)
            x = data[:, i : i + y.size(1)].to(device)
            set_lrs(opt, stlr(t, T, lr, cfg.cut_frac, cfg.ratio), decay)
            states = [(h.detach(), c.detach()) for h, c in states] if states else None
            with torch.autocast(**amp):
                logits, states = lm(x, states)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(lm.parameters(), 0.4)
            opt.step()
            t, tokens = t + 1, tokens + y.numel()
    return tokens


def train_classifier(cfg, clf, x, y, device, amp, unfreeze: bool = True):
    """Stage (c), gradual unfreezing (§3.3): epoch k trains the top k groups, later epochs train all."""
    groups = clf.groups()
    opt = torch.optim.Adam([{"params": p} for p in groups], betas=(0.7, 0.99))
    T, t = cfg.clf_epochs * math.ceil(len(x) / 10), 0
    for epoch in range(cfg.clf_epochs):
        n_frozen = max(len(groups) - 1 - epoch, 0) if unfreeze else 0  # the head alone first
        for l, p in [(l, p) for l, params in enumerate(groups) for p in params]:  # noqa: E741 (layer l, as in the paper)
            p.requires_grad_(l >= n_frozen)
        clf.train()
        for idx in torch.randperm(len(x)).split(10):
            set_lrs(opt, stlr(t, T, cfg.lr, cfg.cut_frac, cfg.ratio), cfg.decay)
            with torch.autocast(**amp):
                logits = clf(x[idx].to(device))
            loss = F.cross_entropy(logits.float(), y[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            t += 1


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    general = make_sentences(cfg, cfg.n_general, g, target=False)[0]
    target = make_sentences(cfg, cfg.n_target, g, target=True)[0]  # the task's unlabelled text
    x_lab, y_lab = make_sentences(cfg, cfg.n_labelled, g, target=True)
    x_test, y_test = make_sentences(cfg, cfg.n_test, g, target=True)  # held out
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )

    def accuracy(model) -> float:  # on the held-out sentences
        with torch.no_grad(), torch.autocast(**amp):
            return (
                (model.eval()(x_test.to(device)).argmax(-1).cpu() == y_test).float().mean().item()
            )

    start, clf = time.perf_counter(), build_model(cfg).to(device)
    tokens = train_lm(cfg, clf.lm, general, cfg.lm_epochs, cfg.lm_lr, 1.0, device, amp)  # (a)
    tokens += train_lm(cfg, clf.lm, target, cfg.ft_epochs, cfg.lr, cfg.decay, device, amp)  # (b)
    lm_s = time.perf_counter() - start
    train_classifier(cfg, clf, x_lab, y_lab, device, amp)  # (c)
    value = accuracy(clf)
    scratch = build_model(cfg).to(device)  # the same classifier without (a) and (b)
    train_classifier(cfg, scratch, x_lab, y_lab, device, amp, unfreeze=False)
    params = sum(p.numel() for p in clf.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": params,
        "scratch_accuracy": accuracy(scratch),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": tokens / lm_s,
        "model_flops_per_s": 6 * params * tokens / lm_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
