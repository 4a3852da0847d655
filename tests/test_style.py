"""The house style is checked by the test command: ruff's lint and its formatter (configured in
pyproject.toml) find nothing to change in the code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

RUFF_TIMEOUT_S = 300  # a hang guard: ruff takes about a second here


def ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return [exe]


@pytest.mark.parametrize(
    "args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"]
)
def test_ruff_finds_nothing(args):
    run = subprocess.run(
        ruff() + args, cwd=ROOT, capture_output=True, text=True, timeout=RUFF_TIMEOUT_S
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
