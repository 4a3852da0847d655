"""Paragraph Vector: PV-DM and PV-DBOW.

Paper: Distributed Representations of Sentences and Documents (Le et al., 2014) https://arxiv.org/abs/1405.4053
Every paragraph i gets a column d_i of a matrix D that is trained, like a word, to help predict the
paragraph's words. PV-DM (§2.2) concatenates d_i with the context word vectors (columns of W) and
predicts the centre word, y = b + U h(w_{t-k}, ..., w_{t+k}; W, D); PV-DBOW (§2.3) predicts words
sampled from the paragraph from d_i alone. Unseen paragraphs get fresh columns fitted by gradient
descent with W, U, b frozen (the inference step, §2.2); the two vectors are concatenated (§3).
Data: documents generated from K topics (each a word distribution over a shared vocabulary);
a logistic-regression classifier trained on the training paragraphs' vectors labels the inferred
vectors of held-out documents. Full softmax here (the paper uses hierarchical softmax).
Run: python -m runnable.paragraph2vec --preset tiny
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("topic-accuracy", ">=", 0.9)


@dataclass
class Config:
    mode: str = "both"          # "dm", "dbow" or "both" (concatenate the two vectors, §3)
    p: int = 32                 # paragraph vector size (400 in the paper, §3.1)
    q: int = 32                 # word vector size (400)
    k: int = 2                  # context words on each side of the predicted word (window 2k + 1)
    vocab: int = 300            # M words
    K: int = 4                  # topics
    words_per_topic: int = 40   # words that are frequent in one topic only
    topic_share: float = 0.35   # fraction of a document's words drawn from its topic's words
    doc_len: int = 40
    n_train: int = 800          # N paragraphs seen in training (with labels for the classifier)
    n_test: int = 400           # held-out paragraphs: vectors inferred with frozen W, U, b
    steps: int = 600
    infer_steps: int = 300
    batch_size: int = 512
    lr: float = 0.02
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # §3.2 (IMDB): 400-dim PV-DM + 400-dim PV-DBOW, window 10, 100,000 reviews (25k train, 25k test,
    # 50k unlabelled). The vocabulary size is not stated; 100,000 words is our assumption.
    "paper": Config(p=400, q=400, k=5, vocab=100_000, n_train=75_000, n_test=25_000, doc_len=230),
    "gpu": Config(p=128, q=128, k=4, vocab=5000, K=20, words_per_topic=150, n_train=40_000, n_test=10_000,
                  doc_len=100, steps=6000, infer_steps=2000, batch_size=8192, lr=0.01, amp_bf16=True),
}


class PVDM(nn.Module):
    """§2.2: y = b + U [d_i; w_{t-k}; ...; w_{t+k}] (concatenation), softmax over the vocabulary."""

    def __init__(self, cfg: Config, n_paragraphs: int):
        super().__init__()
        self.D = nn.Embedding(n_paragraphs, cfg.p)                # paragraph matrix
        self.W = nn.Embedding(cfg.vocab, cfg.q)                   # word matrix, shared across paragraphs
        self.U = nn.Linear(cfg.p + 2 * cfg.k * cfg.q, cfg.vocab)  # U and b

    def forward(self, para, context):                             # (B,), (B, 2k) -> logits (B, vocab)
        h = torch.cat([self.D(para), self.W(context).flatten(1)], 1)
        return self.U(h)


class PVDBOW(nn.Module):
    """§2.3: predict a word sampled from the paragraph from d_i alone (no word vectors)."""

    def __init__(self, cfg: Config, n_paragraphs: int):
        super().__init__()
        self.D = nn.Embedding(n_paragraphs, cfg.p)
        self.U = nn.Linear(cfg.p, cfg.vocab)

    def forward(self, para, context=None):
        return self.U(self.D(para))


class ParagraphVector(nn.Module):
    def __init__(self, cfg: Config, n_paragraphs: int):
        super().__init__()
        self.models = nn.ModuleDict({m: (PVDM if m == "dm" else PVDBOW)(cfg, n_paragraphs)
                                     for m in (["dm", "dbow"] if cfg.mode == "both" else [cfg.mode])})

    def loss(self, docs, para, t, k):
        """-log p(w_t | ...) summed over the variants. docs (N, T), para (B,), t (B,) centre positions."""
        offsets = torch.cat([torch.arange(-k, 0), torch.arange(1, k + 1)]).to(docs.device)
        context = docs[para[:, None], t[:, None] + offsets]       # (B, 2k)
        target = docs[para, t]                                    # (B,)
        return sum(F.cross_entropy(m(para, context).float(), target) for m in self.models.values())

    def vectors(self):                                            # (N, p) or (N, 2p)
        return torch.cat([m.D.weight for m in self.models.values()], 1)


def build_model(cfg: Config) -> nn.Module:
    return ParagraphVector(cfg, cfg.n_train)


def make_docs(cfg: Config, n: int, g: torch.Generator):
    """Topic z ~ U{K}; each word from topic z's words w.p. topic_share, else from the whole vocabulary."""
    zipf = 1.0 / torch.arange(1, cfg.vocab + 1).float()
    background = zipf[torch.randperm(cfg.vocab, generator=g)]    # a Zipf-like unigram distribution
    topic_words = torch.randperm(cfg.vocab, generator=g)[:cfg.K * cfg.words_per_topic].view(cfg.K, -1)
    z = torch.randint(cfg.K, (n,), generator=g)
    from_topic = torch.rand(n, cfg.doc_len, generator=g) < cfg.topic_share
    pick = topic_words[z[:, None], torch.randint(cfg.words_per_topic, (n, cfg.doc_len), generator=g)]
    bg = torch.multinomial(background, n * cfg.doc_len, replacement=True, generator=g).view(n, -1)
    return torch.where(from_topic, pick, bg), z                   # (n, T), (n,)


def fit_paragraphs(model, docs, cfg, steps, params, g, device, amp):
    """SGD on the paragraph-vector objective; `params` are the weights that move."""
    opt = torch.optim.Adam(params, lr=cfg.lr)
    for _ in range(steps):
        para = torch.randint(len(docs), (cfg.batch_size,), generator=g).to(device)
        t = torch.randint(cfg.k, cfg.doc_len - cfg.k, (cfg.batch_size,), generator=g).to(device)
        with torch.autocast(**amp):
            loss = model.loss(docs, para, t, cfg.k)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    docs, z = make_docs(cfg, cfg.n_train + cfg.n_test, g)
    train_docs, test_docs = docs[:cfg.n_train].to(device), docs[cfg.n_train:].to(device)
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda"))
    start = time.perf_counter()
    model = build_model(cfg).to(device)
    loss = fit_paragraphs(model, train_docs, cfg, cfg.steps, model.parameters(), g, device, amp)
    train_s = time.perf_counter() - start
    D_train = model.vectors().detach()
    # Inference step (§2.2): new columns for the unseen paragraphs, everything else frozen.
    new = ParagraphVector(cfg, cfg.n_test).to(device)
    for name, m in new.models.items():
        old = model.models[name]
        m.U.load_state_dict(old.U.state_dict())
        if name == "dm":
            m.W.load_state_dict(old.W.state_dict())
    fit_paragraphs(new, test_docs, cfg, cfg.infer_steps, [m.D.weight for m in new.models.values()], g, device, amp)
    D_test = new.vectors().detach()
    # Logistic regression on the training paragraphs' vectors, tested on the inferred ones.
    mu, sd = D_train.mean(0), D_train.std(0) + 1e-6
    clf = nn.Linear(D_train.size(1), cfg.K).to(device)
    opt = torch.optim.LBFGS(clf.parameters(), max_iter=200)
    y = z[:cfg.n_train].to(device)

    def closure():
        opt.zero_grad()
        out = F.cross_entropy(clf((D_train - mu) / sd), y) + 1e-3 * clf.weight.square().sum()
        out.backward()
        return out
    opt.step(closure)
    pred = clf((D_test - mu) / sd).argmax(1).cpu()
    value = (pred == z[cfg.n_train:]).float().mean().item()
    tokens = cfg.steps * cfg.batch_size
    return {"metric": GATE[0], "value": value, "passed": value >= GATE[2], "mode": cfg.mode,
            "params": sum(p.numel() for p in model.parameters()), "final_loss": loss,
            "train_accuracy": (clf((D_train - mu) / sd).argmax(1) == y).float().mean().item(),
            "seconds": time.perf_counter() - start, "tokens_per_s": tokens / train_s}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=PRESETS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args, rest = ap.parse_known_args(argv)
    cfg = PRESETS[args.preset]
    names = {f.name for f in fields(Config)}
    for item in rest:  # --field=value overrides
        key, _, value = item.removeprefix("--").partition("=")
        if key not in names:
            ap.error(f"unknown option {item}")
        old = getattr(cfg, key)
        cfg = replace(cfg, **{key: value.lower() in ("1", "true", "yes") if isinstance(old, bool) else type(old)(value)})
    result = train(cfg, args.device)
    print(json.dumps(result) if args.json else f"{GATE[0]} = {result['value']:.4f} "
          f"({'passed' if result['passed'] else 'FAILED'} the gate {GATE[1]} {GATE[2]})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
