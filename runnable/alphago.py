"""AlphaGo: policy and value networks guiding Monte-Carlo tree search, here on tic-tac-toe.

Paper: Mastering the game of Go with deep neural networks and tree search (Silver et al., 2016) https://doi.org/10.1038/nature16961
In the paper's order: a conv policy p_sigma learns expert moves (SL; the RL stage that refines it
into p_rho is left out here), a value net v_theta regresses the winner of one self-play position per
game, and MCTS picks edges by Q + u, u ∝ P(s,a)/(1+N(s,a)) with priors from p_sigma, scoring a leaf
as (1-lambda) v_theta + lambda z, z from a fast rollout policy p_pi. Experts = a perfect negamax
solver; the 72 two-move openings are split in half: training / held-out.
Gate: from held-out openings vs the perfect solver, MCTS+nets avoids defeat in >= 95 % of games (and at least as often as raw p_sigma).
Run: python -m runnable.alphago --preset tiny
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The game and its perfect solver (value, best) are in one shared helper; the tests read them here.
from runnable._tictactoe import VALUE, best, legal, play, result, to_move, value, winner  # noqa: F401

GATE = ("non-loss-rate", ">=", 0.95)


@dataclass
class Config:
    board: int = 3  # n x n input (the paper: 19 x 19 Go); training plays tic-tac-toe, n = 3
    planes: int = 4  # input planes (paper: 48, Extended Data Table 2); v_theta gets +1 colour
    k: int = 32  # filters per hidden conv layer (paper: k = 192)
    layers: int = 4  # conv layers of p_sigma: 5x5 first, 3x3 ..., 1x1 last (paper: 13)
    expert_games: int = 800  # SL data: solver games, 1 move in 4 a random "human" slip
    sl_epochs: int = 10
    value_games: int = 3000  # self-play games, one (s, z) pair kept from each
    value_epochs: int = 25
    batch_size: int = 512
    lr: float = 5e-3
    simulations: int = 256  # MCTS simulations per move
    c_puct: float = 5.0  # Methods: c_puct = 5
    lam: float = 0.5  # leaf evaluation mixing parameter, lambda = 0.5
    eval_rounds: int = 2  # games per held-out opening and colour (the solver breaks ties at random)
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(board=19, planes=48, k=192, layers=13),  # architecture only: no Go solver
    "gpu": Config(
        k=192,
        layers=13,
        expert_games=20000,
        sl_epochs=30,
        value_games=100000,
        value_epochs=20,
        batch_size=512,
        lr=3e-4,
        simulations=800,
    ),
}


# The game (tic-tac-toe rules and a perfect negamax solver) is in runnable/_tictactoe.py.


def features(states, colour=False):
    """Planes own stones, opponent stones, empty, ones (+ player colour for v_theta); legal-move mask."""
    s = torch.tensor(states, dtype=torch.float32)  # (B, 9)
    p = torch.tensor([to_move(x) for x in states], dtype=torch.float32)[:, None]
    planes = [s == p, s == -p, s == 0, torch.ones_like(s, dtype=torch.bool)] + [
        (p == 1).expand_as(s)
    ] * colour
    return torch.stack(planes, 1).float().view(
        len(states), -1, 3, 3
    ), s == 0  # (B, planes, 3, 3), (B, 9)


# ----- the networks (Methods, 'Neural network architecture') -----
class PolicyNet(nn.Module):
    """p_sigma (and p_rho): layer 1 zero-pads and convolves k 5x5 filters, the next layers k 3x3
    filters, ReLU after each; the last a 1x1 conv to one plane with a different bias per point.
    hidden=False gives p_pi: a linear softmax of the 3x3 local pattern around each point."""

    def __init__(self, cfg, planes, hidden=True):
        super().__init__()
        self.convs = nn.ModuleList(
            ([nn.Conv2d(planes, cfg.k, 5, padding=2)] if hidden else [])
            + [nn.Conv2d(cfg.k, cfg.k, 3, padding=1) for _ in range(cfg.layers - 2) if hidden]
        )
        self.head = (
            nn.Conv2d(cfg.k, 1, 1, bias=False)
            if hidden
            else nn.Conv2d(planes, 1, 3, padding=1, bias=False)
        )
        self.b = nn.Parameter(torch.zeros(cfg.board**2))
        [
            nn.init.kaiming_normal_(c.weight, nonlinearity="relu") for c in self.convs
        ]  # He init: 12 ReLU layers train

    def trunk(self, x):  # (B, planes, n, n)
        for conv in self.convs:
            x = F.relu(conv(x))  # (B, k, n, n)
        return self.head(x).flatten(1) + self.b  # (B, n*n)

    def forward(self, x, legal):  # legal: (B, n*n) bool
        return (
            self.trunk(x).masked_fill(~legal, float("-inf")).log_softmax(-1)
        )  # log p(a|s), legal a


class ValueNet(PolicyNet):
    """v_theta: the same layers on one more input plane (player colour), then FC 256 + ReLU, one tanh."""

    def __init__(self, cfg):
        super().__init__(cfg, cfg.planes + 1)
        self.fc, self.out = nn.Linear(cfg.board**2, 256), nn.Linear(256, 1)

    def forward(self, x):  # (B, planes+1, n, n)
        return torch.tanh(self.out(F.relu(self.fc(self.trunk(x))))).squeeze(-1)  # (B,) z in [-1, 1]


def build_model(cfg: Config) -> nn.Module:
    return nn.ModuleDict(
        dict(
            p_sigma=PolicyNet(cfg, cfg.planes),
            v_theta=ValueNet(cfg),
            p_pi=PolicyNet(cfg, cfg.planes, hidden=False),
        )
    )


# ----- training helpers -----
def fit(net, inputs, loss_fn, epochs, cfg, lr, device):
    opt = torch.optim.Adam(net.parameters(), lr=lr)  # paper: asynchronous SGD
    for _ in range(epochs):
        for idx in torch.randperm(len(inputs[0])).split(cfg.batch_size):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = loss_fn(*[x[idx].to(device) for x in inputs])
            opt.zero_grad()
            loss.float().backward()
            opt.step()


# ----- search (Methods, 'Search algorithm') -----
@torch.no_grad()
def evaluate_all(model, states, device) -> dict:
    """P(s, .) from p_sigma, v_theta(s) and p_pi(. | s) per state. Tic-tac-toe has 4,520 non-terminal
    positions, so one batched pass fills the table that the search then reads."""
    x, legal_ = (t.to(device) for t in features(states))
    P, pi = model.p_sigma(x, legal_).exp().tolist(), model.p_pi(x, legal_).exp().tolist()  # (B, 9)
    v = model.v_theta(features(states, colour=True)[0].to(device)).tolist()  # (B,)
    return dict(zip(states, zip(P, v, pi)))


def rollout(ev, s, rng):
    """Play p_pi to the end of the game; z = the outcome for the side to move at s."""
    sign = 1
    while (r := result(s)) is None:
        s, sign = play(s, rng.choices(range(9), weights=ev(s)[2])[0]), -sign
    return sign * r


def mcts(ev, s, cfg, rng):
    """Selection, expansion, evaluation, backup; then play the most visited move at the root."""
    tree = {}  # state -> {a: [P, N, W]}
    for _ in range(cfg.simulations):
        x, path = s, []
        while x in tree:  # selection: argmax Q + u
            edges = tree[x]
            sqrt_n = sum(e[1] for e in edges.values()) ** 0.5
            a = max(
                edges,
                key=lambda b: (
                    (edges[b][2] / edges[b][1] if edges[b][1] else 0.0)
                    + cfg.c_puct * edges[b][0] * sqrt_n / (1 + edges[b][1])
                ),
            )  # u = c P sqrt(sum N) / (1 + N)
            path.append(edges[a])
            x = play(x, a)
        V = result(x)  # terminal: the exact outcome
        if V is None:  # expansion: priors P = p_sigma
            P, v, _ = ev(x)
            tree[x] = {a: [P[a], 0, 0.0] for a in legal(x)}
            V = (1 - cfg.lam) * v + cfg.lam * rollout(
                ev, x, rng
            )  # V(s_L) = (1-lam) v(s_L) + lam z_L
        for e in reversed(path):  # backup: N += 1, W += V
            V = -V  # as seen by the player who moved
            e[1], e[2] = e[1] + 1, e[2] + V
    return max(tree[s], key=lambda a: tree[s][a][1])


def duel(openings, choose, cfg, rng):
    """The agent vs the solver from each opening, either colour; games it cannot hold don't count."""
    held = lost = 0
    for s0 in openings:
        for agent_first in (True, False) * cfg.eval_rounds:
            s = s0 if agent_first else play(s0, rng.choice(best(s0)))
            if result(s) is not None or value(s) < 0:
                continue
            me, held = to_move(s), held + 1
            while result(s) is None:
                s = play(s, choose(s) if to_move(s) == me else rng.choice(best(s)))
            lost += winner(s) == -me
    return 1 - lost / held


def train(cfg: Config, device: str = "cpu") -> dict:
    if cfg.board != 3 or cfg.planes != 4:
        raise ValueError("training plays tic-tac-toe: board=3 and its 4 input planes")
    t0, amp = (
        time.time(),
        torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")),
    )
    torch.manual_seed(cfg.seed)
    rng, empty = random.Random(cfg.seed), (0,) * 9
    value(empty)  # solve every position once
    openings = sorted({play(play(empty, a), b) for a in range(9) for b in range(9) if a != b})
    rng.shuffle(openings)
    train_op, test_op = openings[:36], openings[36:]  # 36 held-out openings
    model = build_model(cfg).to(device)
    act = lambda net, ss: net(*(t.to(device) for t in features(ss)))  # noqa: E731  log p(. | s)
    # (1) SL: p_sigma and p_pi maximise log p(a|s) of the expert's move a (a random optimal move)
    X, A = [], []
    for _ in range(cfg.expert_games):
        s = rng.choice(train_op)
        while result(s) is None:
            X.append(s)
            A.append(rng.choice(best(s)))
            s = play(s, rng.choice(legal(s)) if rng.random() < 0.25 else A[-1])
    data = (*features(X), torch.tensor(A))
    fit(
        model.p_sigma,
        data,
        lambda x, m, a: F.nll_loss(model.p_sigma(x, m), a),
        cfg.sl_epochs,
        cfg,
        cfg.lr,
        device,
    )
    fit(
        model.p_pi,
        data,
        lambda x, m, a: F.nll_loss(model.p_pi(x, m), a),
        cfg.sl_epochs,
        cfg,
        1e-2,
        device,
    )
    # (2) RL policy p_rho: skipped (optional here, see the docstring); p_sigma plays its part below
    # (3) value net: U ~ unif{0..5}; moves before U from p_sigma, move U uniformly random, then the
    #     policy (p_rho in the paper) to the end; only s_{U+1} and its outcome z are kept, one per game
    games = [
        [rng.choice(train_op), rng.randrange(6), None] for _ in range(cfg.value_games)
    ]  # [s, U, s_U+1]
    for t in range(7):  # all games in one batch
        if not (live := [game for game in games if result(game[0]) is None]):
            break
        with torch.no_grad(), amp:
            a = torch.multinomial(act(model.p_sigma, [game[0] for game in live]).float().exp(), 1)[
                :, 0
            ]
        for game, a_t in zip(live, a.tolist()):
            game[2] = game[0] if t == game[1] + 1 else game[2]
            game[0] = play(game[0], rng.choice(legal(game[0])) if t == game[1] else a_t)
    S = [s for _, _, s in games if s]
    z = torch.tensor(
        [winner(end) * to_move(s) for end, _, s in games if s], dtype=torch.float32
    )  # z_{U+1}
    fit(
        model.v_theta,
        (features(S, colour=True)[0], z),
        lambda x, z: F.mse_loss(model.v_theta(x).float(), z),
        cfg.value_epochs,
        cfg,
        cfg.lr,
        device,
    )
    t_train = time.time() - t0
    # (4) from the held-out openings vs the solver: MCTS with p_sigma, v_theta and p_pi; raw p_sigma
    ev = evaluate_all(model, [s for s in VALUE if result(s) is None], device).__getitem__
    rate = duel(test_op, lambda s: mcts(ev, s, cfg, rng), cfg, random.Random(1))
    policy_rate = duel(
        test_op, lambda s: max(legal(s), key=lambda a: ev(s)[0][a]), cfg, random.Random(1)
    )
    n_pos = len(X) * cfg.sl_epochs * 2 + len(S) * cfg.value_epochs
    return {
        "metric": GATE[0],
        "value": rate,
        "passed": rate >= GATE[2] and rate >= policy_rate,
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.time() - t0, 2),
        "images_per_s": round(n_pos / t_train, 1),
        "policy_non_loss_rate": policy_rate,
        "expert_positions": len(X),
        "value_positions": len(S),
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
