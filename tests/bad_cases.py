"""The broken fixtures in tests/data/bad/: record cases (a project with papers/) and .bib cases
(``bib-*``, a refs.bib). A fixture may hold a ``generate.py`` whose ``generate(dest)`` writes its
input at test time, for inputs too big to commit."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

BAD = Path(__file__).resolve().parent / "data" / "bad"

RECORD_CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir() and not p.name.startswith("bib-"))
BIB_CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir() and p.name.startswith("bib-"))


def materialise(case: str, dest: Path, **kwargs) -> Path:
    """A copy of the fixture in ``dest`` with its generated input written; returns ``dest``."""
    shutil.copytree(
        BAD / case, dest, ignore=shutil.ignore_patterns("generate.py", "README.txt", "__pycache__")
    )
    if (BAD / case / "generate.py").is_file():
        runpy.run_path(str(BAD / case / "generate.py"))["generate"](dest, **kwargs)
    return dest
