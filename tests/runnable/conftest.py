"""Runnables' tests: threads and OpenMP wait policy chosen as ``kb run`` chooses them.

Before torch is imported: threads that wait passively (``OMP_WAIT_POLICY=PASSIVE``, read when
torch loads OpenMP), and as many threads as there are free cores for each pytest-xdist worker,
unless the caller set ``OMP_NUM_THREADS`` or ``OMP_WAIT_POLICY`` (kb.runnables.child_env).
"""

import os

import pytest

from kb.runnables import child_env

_env = child_env(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
os.environ["OMP_WAIT_POLICY"] = _env["OMP_WAIT_POLICY"]

torch = pytest.importorskip("torch")
torch.set_num_threads(int(_env["OMP_NUM_THREADS"].split(",")[0]))
