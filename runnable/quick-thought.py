"""Quick-thought vectors: learn sentence vectors by picking the true neighbour among candidates.

Paper: An Efficient Framework for Learning Sentence Representations (Logeswaran et al., 2018) https://arxiv.org/abs/1803.02893
Skip-thought (Kiros et al., 2015) trains a sentence encoder by generating the neighbouring sentences word by
word. Quick-thought keeps the idea that a sentence is known by its neighbours but makes it discriminative:
two encoders f and g map a sentence s and each candidate c to vectors, the score is the inner product
f(s) . g(c), and a softmax over the candidates in the batch must pick the true next sentence (§3). No decoder,
so training is much cheaper; the sentence vector is [f(s); g(s)]. Data: the stories of the skip-thought
runnable (a hidden topic per story and one of 8 phases that advances by one each sentence).
Gate: next-sentence selection among K = 8 candidates on held-out stories >= 0.65 (tiny ~0.8, chance 0.125;
with 48 topic-phase states two candidates sometimes look alike, so ~0.85 is about the ceiling).
Run: kb run quick-thought
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("next-sentence-accuracy", ">=", 0.65)
PAD, N_SPECIAL = 0, 1


@dataclass
class Config:
    d_word: int = 32  # word embeddings (300 in the paper)
    d_hid: int = 64  # GRU size of each encoder (1200 / 2400 in the paper)
    vocab: int = 0  # 0: set by the generated text (50,000 in the paper)
    n_topics: int = 6
    topic_words: int = 8
    n_phases: int = 8
    phase_words: int = 4
    noise_words: int = 20
    p_topic: float = 0.35  # share of topic words; phase words take another 0.25
    sent_len: int = 8
    story_len: int = 5
    n_stories: int = 1200
    n_test: int = 1000  # held-out stories
    K: int = 8  # candidates per test query (chance = 1/K)
    steps: int = 400
    batch_size: int = (
        64  # the candidates of a training step are the batch's next sentences (400 in §4)
    )
    lr: float = 3e-3  # Adam (5e-4 in §4)
    clip: float = 10.0
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(d_word=300, d_hid=2400, vocab=50000, batch_size=400),  # uni-QT, 2400-d GRUs
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
        batch_size=400,
        K=32,
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


class Encoder(nn.Module):
    """A GRU over word embeddings; the last hidden state is the sentence vector."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.embed = nn.Embedding(vocab_size(cfg), cfg.d_word, padding_idx=PAD)
        self.gru = nn.GRU(cfg.d_word, cfg.d_hid, batch_first=True)

    def forward(self, s):  # (B, N) -> (B, d_hid)
        return self.gru(self.embed(s))[1][0]


class QuickThought(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.f, self.g = Encoder(cfg), Encoder(cfg)  # §3: separate encoders for input and context

    def scores(self, s, candidates):  # (B, N), (C, N) -> (B, C)
        return self.f(s) @ self.g(candidates).T  # c(u, v) = u . v (inner product, §3)

    def forward(self, s, s_next):
        """§3 objective: -log softmax over the batch's candidates of the true next sentence's score."""
        logits = self.scores(s, s_next)  # (B, B): row i's true candidate is column i
        return F.cross_entropy(logits.float(), torch.arange(len(s), device=s.device))

    def embed_sentences(self, s):  # the representation [f(s); g(s)]
        return torch.cat([self.f(s), self.g(s)], -1)


def build_model(cfg: Config) -> nn.Module:
    return QuickThought(cfg)


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


@torch.no_grad()
def selection_accuracy(model, stories, K: int, g: torch.Generator, device) -> float:
    """For each held-out (s, next) pair, rank the true next sentence against K-1 next sentences of other
    held-out stories: the share of queries where the true one scores highest."""
    n = len(stories) // K * K
    i = torch.randint(0, stories.size(1) - 1, (n,), generator=g)
    s, nxt = stories[torch.arange(n), i], stories[torch.arange(n), i + 1]
    correct = 0
    for start in range(0, n, K):  # groups of K queries share their candidates
        sc = model.scores(
            s[start : start + K].to(device), nxt[start : start + K].to(device)
        ).float()  # (K, K)
        correct += (sc.argmax(-1).cpu() == torch.arange(K)).sum().item()
    return correct / n


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    stories, _ = make_stories(cfg, cfg.n_stories, g)
    test_stories, _ = make_stories(cfg, cfg.n_test, g)  # held out: stories never trained on
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    start, tokens = time.perf_counter(), 0
    model.train()
    for _step in range(cfg.steps):
        b = torch.randint(cfg.n_stories, (cfg.batch_size,), generator=g)
        i = torch.randint(0, cfg.story_len - 1, (cfg.batch_size,), generator=g)
        s, s_next = stories[b, i].to(device), stories[b, i + 1].to(device)
        with torch.autocast(**amp):
            loss = model(s, s_next)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        tokens += 2 * s.numel()
    train_s = time.perf_counter() - start
    model.eval()
    with torch.autocast(**amp):
        value = selection_accuracy(model, test_stories, cfg.K, g, device)
    params = sum(p.numel() for p in model.parameters())
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "params": params,
        "chance": 1 / cfg.K,
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
