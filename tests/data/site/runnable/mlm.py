"""Masked language model (fixture for the site tests: never run)."""


def mask_tokens(x, p=0.15):
    """Eq. 1: hide a fraction p of the positions."""
    chosen = x.new_empty(x.shape).bernoulli_(p).bool()   # (B, T)
    return x.masked_fill(chosen, 0), chosen
