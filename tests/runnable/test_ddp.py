"""Data parallelism: gpt, bert and resnet launched by torchrun as two CPU processes (gloo, CUDA hidden).
Each rank trains on its share of every batch; DDP averages the gradients, so both ranks must end with
bit-identical weights (each prints a SHA-256 of its parameters when KB_DDP_CHECKSUM is set), the held-out
metric is summed over the ranks, and only rank 0 prints the JSON result. GPT runs its whole tiny preset
and must pass its gate; BERT and ResNet run a few steps only (their gates need the full run, too slow
here), so for them the exit status must simply agree with the reported "passed"."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

RUNS = {
    "gpt": [],  # the full tiny preset
    "bert": ["--steps=30"],
    "resnet": ["--epochs=1"],  # the 56-layer plain and residual nets, one epoch each
}
NETS = {"gpt": 1, "bert": 1, "resnet": 2}  # models trained (and checksummed) per run


def torchrun(name: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "KB_DDP_CHECKSUM": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "runnable" / f"{name}.py"),
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--json",
        *overrides,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.parametrize("name", list(RUNS))
def test_two_ranks_stay_in_step_and_rank_0_reports_once(name):
    proc = torchrun(name, *RUNS[name])
    reports = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1, (proc.stdout, proc.stderr[-3000:])
    result = json.loads(reports[0])
    assert result["world_size"] == 2 and result["metric"] and isinstance(result["value"], float)
    assert proc.returncode == (0 if result["passed"] else 1), proc.stderr[-3000:]
    digests = {0: [], 1: []}
    for rank, digest in re.findall(r"ddp-params rank=(\d) sha256=([0-9a-f]{64})", proc.stderr):
        digests[int(rank)].append(digest)
    assert len(digests[0]) == NETS[name] and digests[0] == digests[1], (
        digests
    )  # synchronised gradients
    if name == "gpt":
        assert result["passed"] and proc.returncode == 0, result
