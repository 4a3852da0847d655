"""Tic-tac-toe and a perfect solver: the game AlphaGo's runnable plays instead of Go.

Not the paper's contribution, so kept apart from runnable/alphago.py (the networks and the tree
search are there). A state is a tuple of 9 cells, 0 empty, +1 X (moves first), -1 O.
"""

from __future__ import annotations

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def to_move(s):
    return 1 if sum(s) == 0 else -1


def winner(s):
    return next((s[i] for i, j, k in LINES if s[i] and s[i] == s[j] == s[k]), 0)


def play(s, a):
    return s[:a] + (to_move(s),) + s[a + 1 :]


def result(s):
    """None while the game runs, else the outcome for the side to move (-1: the last mover won)."""
    return winner(s) * to_move(s) if winner(s) else (None if 0 in s else 0)


def legal(s):
    return [a for a, v in enumerate(s) if v == 0]


VALUE = {}  # the solver's memo: state -> value


def value(s):
    """Perfect play by negamax: +1 win, 0 draw, -1 loss for the side to move."""
    if s not in VALUE:
        VALUE[s] = r if (r := result(s)) is not None else max(-value(play(s, a)) for a in legal(s))
    return VALUE[s]


def best(s):  # the solver's optimal moves
    return [a for a in legal(s) if -value(play(s, a)) == value(s)]
