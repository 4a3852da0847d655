"""Runnables' tests: one torch thread per pytest-xdist worker, so workers don't oversubscribe."""
import os

import pytest

torch = pytest.importorskip("torch")

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_asked = os.environ.get("OMP_NUM_THREADS", "")  # a thread count the caller set wins
torch.set_num_threads(int(_asked) if _asked.isdigit() and int(_asked) > 0 else max(1, (os.cpu_count() or 1) // _workers))
