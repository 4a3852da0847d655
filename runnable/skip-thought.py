"""Skip-thought vectors: encode a sentence, generate the sentences around it.

Paper: Skip-Thought Vectors (Kiros et al., 2015) https://arxiv.org/abs/1506.06726
A GRU encoder reads sentence s_i; its last hidden state h_i is the sentence vector. Two GRU decoders,
one for s_{i-1} and one for s_{i+1}, generate their neighbours word by word with h_i fed into every
gate (the C_r, C_z, C terms of §2, here as extra input columns of nn.GRU), and share the output
vocabulary matrix. The objective is the sum of both log-likelihoods. Sentences whose neighbours are alike
get alike vectors. Data: stories of 5 sentences; a story has one hidden topic (its words recur in every
sentence) and a phase that advances by one each sentence, plus noise words.
Gate: a linear probe on frozen vectors of held-out sentences, fit on 60 labelled ones, predicts the
topic (6 classes) with accuracy >= 0.85 (tiny ~0.95); averaged random word vectors get ~0.65-0.7.
Run: kb run skip-thought
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("probe-accuracy", ">=", 0.85)
PAD, BOS, EOS, N_SPECIAL = 0, 1, 2, 3


@dataclass
class Config:
    d_word: int = 32  # word embeddings (620 in the paper, §3.1)
    d_hid: int = 64  # sentence vector size (2400 for uni-skip)
    vocab: int = 0  # 0: set by the generated text (20,000 in the paper)
    n_topics: int = 6
    topic_words: int = 8
    n_phases: int = 4
    phase_words: int = 4
    noise_words: int = 20
    p_topic: float = 0.35  # share of topic words in a sentence; phase words take another 0.25
    sent_len: int = 8
    story_len: int = 5
    n_stories: int = 1200  # training stories (BookCorpus: 11,038 books)
    n_probe: int = 60  # labelled held-out sentences for the probe
    n_test: int = 1000
    steps: int = 300
    batch_size: int = 64  # 128 in the paper
    lr: float = 3e-3  # Adam (§3.1)
    clip: float = 10.0  # gradient norm clipped at 10 (§3.1)
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(d_word=620, d_hid=2400, vocab=20000, batch_size=128),  # uni-skip, §3.1
    "gpu": Config(
        d_word=256,
        d_hid=1024,
        n_topics=40,
        topic_words=50,
        n_phases=8,
        phase_words=20,
        noise_words=2000,
        sent_len=20,
        n_stories=100_000,
        steps=5000,
        batch_size=128,
        n_probe=400,
        amp_bf16=True,
    ),
}


def vocab_size(cfg: Config) -> int:
    return (
        cfg.vocab
        or N_SPECIAL
        + cfg.n_topics * cfg.topic_words
        + cfg.n_phases * cfg.phase_words
        + cfg.noise_words
    )


class SkipThought(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        V = vocab_size(cfg)
        self.embed = nn.Embedding(V, cfg.d_word, padding_idx=PAD)  # shared by encoder and decoders
        self.encoder = nn.GRU(cfg.d_word, cfg.d_hid, batch_first=True)
        # §2: decoder GRU with h_i entering every gate: [w_{t-1}; h_i] as input = W x + C h_i
        self.dec_prev = nn.GRU(cfg.d_word + cfg.d_hid, cfg.d_hid, batch_first=True)
        self.dec_next = nn.GRU(cfg.d_word + cfg.d_hid, cfg.d_hid, batch_first=True)
        self.V = nn.Linear(cfg.d_hid, V)  # vocabulary matrix, shared by both decoders

    def encode(self, s):  # (B, N) -> h_i (B, d_hid)
        return self.encoder(self.embed(s))[1][0]  # last hidden state h_i^N

    def decode_logprob(self, decoder, h_i, target):  # teacher forcing; target (B, N+1) ends in EOS
        inp = torch.cat([torch.full_like(target[:, :1], BOS), target[:, :-1]], 1)
        x = self.embed(inp)  # (B, N+1, d_word)
        x = torch.cat([x, h_i[:, None].expand(-1, x.size(1), -1)], -1)
        logits = self.V(decoder(x)[0])  # (B, N+1, V)
        return -F.cross_entropy(
            logits.float().flatten(0, 1), target.flatten(), reduction="sum"
        ) / len(target)

    def forward(self, s_prev, s_i, s_next):
        """§2 objective: sum_t log P(w_{i+1}^t | w_{i+1}^{<t}, h_i) + sum_t log P(w_{i-1}^t | w_{i-1}^{<t}, h_i)."""
        h_i = self.encode(s_i)
        return self.decode_logprob(self.dec_prev, h_i, s_prev) + self.decode_logprob(
            self.dec_next, h_i, s_next
        )


def build_model(cfg: Config) -> nn.Module:
    return SkipThought(cfg)


def make_stories(cfg: Config, n: int, g: torch.Generator):
    """(n, story_len, sent_len) words and (n,) topics. Sentence j of a story uses the story's topic words
    and the words of phase (start + j) mod n_phases; the rest is noise."""
    L, N = cfg.story_len, cfg.sent_len
    topic = torch.randint(cfg.n_topics, (n,), generator=g)
    phase = (
        torch.randint(cfg.n_phases, (n, 1), generator=g) + torch.arange(L)
    ) % cfg.n_phases  # (n, L)
    t0, p0 = N_SPECIAL, N_SPECIAL + cfg.n_topics * cfg.topic_words
    n0 = p0 + cfg.n_phases * cfg.phase_words
    w_topic = (
        t0
        + topic[:, None, None] * cfg.topic_words
        + torch.randint(cfg.topic_words, (n, L, N), generator=g)
    )
    w_phase = (
        p0
        + phase[..., None] * cfg.phase_words
        + torch.randint(cfg.phase_words, (n, L, N), generator=g)
    )
    w_noise = n0 + torch.randint(cfg.noise_words, (n, L, N), generator=g)
    u = torch.rand(n, L, N, generator=g)
    words = torch.where(
        u < cfg.p_topic, w_topic, torch.where(u < cfg.p_topic + 0.25, w_phase, w_noise)
    )
    return words, topic


def with_eos(s):  # (B, N) -> (B, N+1)
    return torch.cat([s, torch.full_like(s[:, :1], EOS)], 1)


def linear_probe(X_fit, y_fit, X_test, y_test, n_classes: int, steps: int = 300) -> float:
    """Logistic regression on standardized frozen features; returns test accuracy."""
    mu, sd = X_fit.mean(0), X_fit.std(0) + 1e-6
    X_fit, X_test = (X_fit - mu) / sd, (X_test - mu) / sd
    W = torch.zeros(X_fit.size(1), n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=0.05)
    for _ in range(steps):
        loss = F.cross_entropy(X_fit @ W + b, y_fit) + 1e-3 * W.square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ((X_test @ W + b).argmax(-1) == y_test).float().mean().item()


def probe_sets(cfg: Config, g: torch.Generator):
    """Held-out sentences (one per fresh story) with their topics: n_probe to fit, n_test to score."""
    words, topic = make_stories(cfg, cfg.n_probe + cfg.n_test, g)
    return words[:, 0], topic  # (n, N), (n,)


def random_bag_accuracy(cfg: Config, sents, topic) -> float:
    """Baseline: the mean of fixed random word vectors, probed the same way."""
    E = torch.randn(
        vocab_size(cfg), cfg.d_hid, generator=torch.Generator().manual_seed(cfg.seed + 7)
    )
    X = E[sents].mean(1)
    k = cfg.n_probe
    return linear_probe(X[:k], topic[:k], X[k:], topic[k:], cfg.n_topics)


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    stories, _ = make_stories(cfg, cfg.n_stories, g)
    sents, topic = probe_sets(cfg, g)  # held out: sentences from unseen stories
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    start, tokens = time.perf_counter(), 0
    model.train()
    for _step in range(cfg.steps):
        b = torch.randint(cfg.n_stories, (cfg.batch_size,), generator=g)
        i = torch.randint(1, cfg.story_len - 1, (cfg.batch_size,), generator=g)  # a middle sentence
        s_prev, s_i, s_next = (stories[b, i + o].to(device) for o in (-1, 0, 1))
        with torch.autocast(**amp):
            loss = -model(with_eos(s_prev), s_i, with_eos(s_next))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        tokens += 3 * s_i.numel()
    train_s = time.perf_counter() - start
    model.eval()
    with torch.no_grad(), torch.autocast(**amp):
        X = model.encode(sents.to(device)).float().cpu()  # frozen skip-thought vectors
    k = cfg.n_probe
    value = linear_probe(X[:k], topic[:k], X[k:], topic[k:], cfg.n_topics)
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": params,
        "random_bag_accuracy": random_bag_accuracy(cfg, sents, topic),
        "final_loss": loss.item(),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": tokens / train_s,
        "model_flops_per_s": 6 * params * tokens / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
