"""runnable/_digits.py: the held-out split is fixed, placement keeps every digit whole and within
its shift, and the training-loop shell gives two models the same batches for the same seed,
whether or not one of them augments its batches."""

import torch
from torch import nn

from runnable._digits import accuracy, fit, load_digits, place, place_scaled


def test_held_out_split_is_fixed_whatever_the_size():
    a, b = load_digits(8), load_digits(12)
    assert torch.equal(a[1], b[1]) and torch.equal(a[3], b[3])
    assert len(a[3]) == 500 and len(a[1]) + len(a[3]) == 1797
    assert a[0].shape[1:] == (1, 8, 8) and b[0].shape[1:] == (1, 12, 12)


def test_place_keeps_each_digit_whole_and_at_most_max_shift_off_centre():
    x = torch.rand(40, 1, 6, 6) + 0.5  # no zero pixels
    out = place(x, 14, seed=0, max_shift=2)
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # nothing cut off
    rows = (out[:, 0] > 0).any(dim=2).float().argmax(dim=1)  # first inked row
    assert rows.min() >= 4 - 2 and rows.max() <= 4 + 2 and len(set(rows.tolist())) == 5
    assert torch.equal(place(x, 14, seed=0, max_shift=2), out)  # seeded
    assert not torch.equal(place(x, 14, seed=1, max_shift=2), out)


def test_place_scaled_draws_several_sizes_on_one_canvas():
    x_tr, y_tr, x_te, y_te = place_scaled(range(6, 11), 16)
    assert x_tr.shape[1:] == x_te.shape[1:] == (1, 16, 16) and len(y_te) == 500
    ink = (x_te > x_te.min() + 1e-3).flatten(1).sum(1)  # inked pixels
    assert ink.float().std() > 5  # sizes differ
    assert abs(x_tr.mean().item()) < 1e-4 and abs(x_tr.std().item() - 1) < 1e-3


def test_fit_shows_two_models_of_one_seed_the_same_batches():
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 4, 4), torch.randint(0, 3, (64,))
    data = (x, y, x[:16], y[:16])
    seen = []

    def loss_fn(model, xb, yb):
        seen.append(yb.clone())
        return nn.functional.cross_entropy(model(xb), yb)

    noisy = lambda xb, g: xb + torch.randn(xb.shape, generator=g)  # draws
    for augment in (None, noisy):  # with and without
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        history = fit(model, data, loss_fn, opt, epochs=2, batch_size=10, seed=3, augment=augment)
        assert len(history) == 2 and history[-1] == accuracy(model, x[:16], y[:16])
    half = len(seen) // 2
    assert all(torch.equal(a, b) for a, b in zip(seen[:half], seen[half:]))
