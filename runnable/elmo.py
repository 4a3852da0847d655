"""ELMo: deep contextualized word representations from a biLM.

Paper: Deep contextualized word representations (Peters et al., 2018) https://arxiv.org/abs/1802.05365
A forward and a backward L-layer LSTM language model share the token representation Theta_x and
the softmax Theta_s and are trained jointly (§3.1). For a downstream task the biLM is frozen and
token k is represented by ELMo_k = gamma * sum_j s_j h_{k,j} with softmax-normalised s over the
L+1 layers (h_{k,0} = token layer, h_{k,j} = [fwd_j; bwd_j], §3.2), concatenated with x_k (§3.3).
Here: token embeddings instead of the character CNN; LSTMs with projections and a residual
connection between layers as in §3.4. Data: sentences with ambiguous words whose sense is set by a
cue word a few positions earlier (and sometimes by the word after); the task labels each ambiguous
token's sense. Gate: held-out accuracy of a linear classifier on [x_k; ELMo_k]. The ablation is
the same classifier on the context-free x_k alone, from the same biLM, data and seed.
Run: python -m runnable.elmo --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("accuracy", ">=", 0.9)


@dataclass
class Config:
    L: int = 2  # biLSTM layers (§3.4)
    d: int = 32  # token representation and LSTM projection size (512)
    H: int = 64  # LSTM cells per direction and layer (4096)
    vocab: int = 0  # 0: set by the generated corpus (793,471 in the 1B Word Benchmark)
    n_ambiguous: int = 4  # words with two senses ("bank")
    n_cue: int = 6  # cue words per sense, a few positions before the ambiguous word
    n_object: int = 6  # words per sense that may follow the ambiguous word
    n_noise: int = 40
    p_object_lm: float = 1.0  # share of biLM sentences with an object after the ambiguous word
    p_object_task: float = 0.5  # ... of labelled ones (without it only the cue tells the sense)
    sent_len: int = 12
    n_lm: int = 8000  # unlabelled sentences for the biLM
    n_task: int = 400  # labelled sentences for the downstream task
    n_test: int = 1000  # held-out labelled sentences
    steps: int = 300
    evals: int = 3  # evaluation points for the history chart
    batch_size: int = 64
    lr: float = 5e-3
    task_steps: int = 300
    l2_s: float = 1e-3  # lambda ||w||^2 on the layer weights (§3.2)
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # §3.4: L = 2, 4096 units, 512-dim projections, residual connection; 1B Word Benchmark vocab.
    "paper": Config(L=2, d=512, H=4096, vocab=793_471),
    "gpu": Config(
        d=256,
        H=1024,
        n_ambiguous=50,
        n_cue=40,
        n_object=40,
        n_noise=5000,
        sent_len=40,
        n_lm=500_000,
        steps=5000,
        batch_size=256,
        lr=1e-3,
        amp_bf16=True,
    ),
}


def vocab_size(cfg: Config) -> int:
    return cfg.vocab or cfg.n_ambiguous + 2 * cfg.n_cue + 2 * cfg.n_object + cfg.n_noise


class BiLM(nn.Module):
    """§3.1: forward and backward LSTM LMs; Theta_x (embed) and Theta_s (softmax) shared by both."""

    def __init__(self, cfg: Config):
        super().__init__()
        V = vocab_size(cfg)
        self.embed = nn.Embedding(V, cfg.d)  # Theta_x
        lstm = lambda: nn.LSTM(cfg.d, cfg.H, proj_size=cfg.d, batch_first=True)  # 4096 cells -> 512
        self.fwd = nn.ModuleList(lstm() for _ in range(cfg.L))
        self.bwd = nn.ModuleList(lstm() for _ in range(cfg.L))
        self.softmax = nn.Linear(cfg.d, V)  # Theta_s

    def layers(self, tokens):
        """R_k = {h_{k,j}, j = 0..L} as a list of L+1 tensors (B, T, 2d)."""
        x = self.embed(tokens)  # (B, T, d)
        hf, hb = x, x.flip(1)  # the backward LM reads right to left
        R = [torch.cat([x, x], -1)]  # h_{k,0}: token layer, twice
        for j, (f, b) in enumerate(zip(self.fwd, self.bwd)):
            of, ob = f(hf)[0], b(hb)[0]  # (B, T, d)
            if j > 0:  # §3.4: residual between layers
                of, ob = of + hf, ob + hb
            hf, hb = of, ob
            R.append(torch.cat([hf, hb.flip(1)], -1))  # h_{k,j} = [fwd; bwd]
        return R

    def loss(self, tokens):
        """-(log p(t_k | t_<k) + log p(t_k | t_>k)), averaged (§3.1)."""
        top = self.layers(tokens)[-1]
        d = top.size(-1) // 2
        fwd_logits = self.softmax(top[:, :-1, :d])  # state at k predicts t_{k+1}
        bwd_logits = self.softmax(top[:, 1:, d:])  # state at k predicts t_{k-1}
        V = fwd_logits.size(-1)
        return (
            F.cross_entropy(fwd_logits.float().reshape(-1, V), tokens[:, 1:].flatten())
            + F.cross_entropy(bwd_logits.float().reshape(-1, V), tokens[:, :-1].flatten())
        ) / 2


class ScalarMix(nn.Module):
    """§3.2: ELMo_k = gamma * sum_j softmax(w)_j h_{k,j}."""

    def __init__(self, n_layers: int):
        super().__init__()
        self.w, self.gamma = nn.Parameter(torch.zeros(n_layers)), nn.Parameter(torch.ones(()))

    def forward(self, R):  # (L+1, N, 2d) -> (N, 2d)
        s = torch.softmax(self.w, 0)
        return self.gamma * (s[:, None, None] * R).sum(0)


def build_model(cfg: Config) -> nn.Module:
    return BiLM(cfg)


def make_data(cfg: Config, n: int, g: torch.Generator, p_object: float):
    """Noise words, a cue of sense z at position i, an ambiguous word at i + 3..5, followed by an
    object word of sense z with probability p_object. Returns tokens (n, T), the ambiguous word's
    position, z."""
    A, C, O, T = cfg.n_ambiguous, cfg.n_cue, cfg.n_object, cfg.sent_len  # noqa: E741 (the data's O objects)
    cue0, obj0, noise0 = A, A + 2 * C, A + 2 * C + 2 * O
    x = noise0 + torch.randint(cfg.n_noise, (n, T), generator=g)
    z = torch.randint(2, (n,), generator=g)  # the sense
    i = torch.randint(0, T - 6, (n,), generator=g)
    pos = i + torch.randint(3, 6, (n,), generator=g)  # the ambiguous word, 3-5 steps on
    rows = torch.arange(n)
    x[rows, i] = cue0 + z * C + torch.randint(C, (n,), generator=g)
    x[rows, pos] = torch.randint(A, (n,), generator=g)
    has_obj = torch.rand(n, generator=g) < p_object
    obj = obj0 + z * O + torch.randint(O, (n,), generator=g)
    x[rows, pos + 1] = torch.where(has_obj, obj, x[rows, pos + 1])
    return x, pos, z


def fit_classifier(feats, y, cfg, mix: ScalarMix | None):
    """Linear classifier on [x_k; ELMo_k] (mix given) or on x_k alone; returns its predictor."""
    dim = feats.size(-1) // 2 + (feats.size(-1) if mix is not None else 0)
    clf = nn.Linear(dim, 2)
    params = list(clf.parameters()) + (list(mix.parameters()) if mix is not None else [])
    opt = torch.optim.Adam(params, lr=0.05)
    x_k = lambda R: R[0, :, : R.size(-1) // 2]  # context-free token vector
    rep = lambda R: torch.cat([x_k(R), mix(R)], -1) if mix is not None else x_k(R)
    for _ in range(cfg.task_steps):
        loss = F.cross_entropy(clf(rep(feats)), y)
        if mix is not None:
            loss = loss + cfg.l2_s * mix.w.square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda R: clf(rep(R)).argmax(-1)


def downstream(cfg: Config, model: BiLM, task, test, device, amp):
    """Freeze the biLM (§3.3), fit s, gamma and a classifier on [x_k; ELMo_k], and one on x_k."""

    def features(x, pos):  # (L+1, n, 2d) at the ambiguous word
        with torch.no_grad(), torch.autocast(**amp):
            R = torch.stack(model.layers(x.to(device)))
        return R[:, torch.arange(len(x)), pos.to(device)].float()

    model.eval()
    (x, pos, z), (x_test, pos_test, z_test) = task, test
    R_task, R_test = features(x, pos), features(x_test, pos_test)
    mix = ScalarMix(cfg.L + 1).to(device)
    elmo = fit_classifier(R_task, z.to(device), cfg, mix)  # learns s, gamma and the classifier
    free = fit_classifier(R_task, z.to(device), cfg, None)
    model.train()
    with torch.no_grad():
        acc = lambda predict: (predict(R_test) == z_test.to(device)).float().mean().item()
        return acc(elmo), acc(free), mix


def train(cfg: Config, device: str = "cpu") -> dict:
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    g, g_task = torch.Generator().manual_seed(cfg.seed), torch.Generator().manual_seed(cfg.seed + 1)
    lm_data = make_data(cfg, cfg.n_lm, g, cfg.p_object_lm)[0]
    task = make_data(cfg, cfg.n_task, g_task, cfg.p_object_task)
    test = make_data(cfg, cfg.n_test, g_task, cfg.p_object_task)  # held-out sentences
    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    every, idea, ablation, tokens, train_s = max(1, cfg.steps // cfg.evals), [], [], 0, 0.0
    for step in range(1, cfg.steps + 1):  # 1. pre-train the biLM, unlabelled
        t0 = time.perf_counter()
        x = lm_data[torch.randint(cfg.n_lm, (cfg.batch_size,), generator=g)].to(device)
        with torch.autocast(**amp):
            loss = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tokens += 2 * x.numel()
        train_s += time.perf_counter() - t0
        if step % every == 0 or step == cfg.steps:  # 2. use it, frozen, downstream
            value, context_free, mix = downstream(cfg, model, task, test, device, amp)
            idea.append(value), ablation.append(context_free)
    gate = lambda v: v >= GATE[2]
    at = [min(cfg.steps, every * (i + 1)) for i in range(len(idea))]
    return {
        "metric": GATE[0],
        "value": value,
        "ablation": {"name": "context-free token vectors", "value": context_free},
        "conditions": {},
        "history": {"x": "step", "at": at, "idea": idea, "ablation": ablation},
        "passed": gate(value) and not gate(context_free),
        "seed": cfg.seed,
        "context_free_accuracy": context_free,
        "s": torch.softmax(mix.w, 0).tolist(),
        "gamma": mix.gamma.item(),
        "lm_loss": loss.item(),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": time.perf_counter() - start,
        "tokens_per_s": tokens / train_s,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
