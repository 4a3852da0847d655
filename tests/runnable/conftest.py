"""Runnables' tests: one torch thread per pytest-xdist worker, so workers don't oversubscribe."""
import os

import pytest

torch = pytest.importorskip("torch")

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, (os.cpu_count() or 1) // _workers))
