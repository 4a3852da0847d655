"""Shared fixtures: the project root and records read one at a time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kb.knowledge.loader import parse_record
from kb.knowledge.schema import Paper

# The parse cache would write .cache/ into every fixture folder a test loads; tests/test_cache.py
# turns it back on where it is the subject.
os.environ["KB_NO_CACHE"] = "1"

# Fixture projects hold .py files (runnables, generators) that are data, not tests.
collect_ignore = ["data"]

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def record(paper_id: str) -> Paper:
    """One record, parsed and validated on its own (no cross-record checks)."""
    rel = f"papers/{paper_id}.yaml"
    rec, problems = parse_record(rel, (ROOT / rel).read_bytes())
    assert rec is not None, "\n".join(map(str, problems))
    return rec.paper


def figure(paper_id: str, figure_id: str) -> float:
    """A figure the paper states, from its record."""
    for f in record(paper_id).figures:
        if f.id == figure_id:
            return f.value
    raise KeyError(f"{paper_id} has no figure {figure_id!r}")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def site_project(tmp_path_factory) -> Path:
    """The site fixture project (tests/data/mini + tests/data/site), built once per session:
    ``site_project / "site"`` is the built site."""
    from kb.site.build import build
    from tests.site_project import make_project

    project = make_project(tmp_path_factory.mktemp("site") / "project")
    build(project)
    return project


@pytest.fixture(scope="session")
def xss_project(tmp_path_factory) -> Path:
    """tests/data/xss (XSS payloads in every text field) built with the normal pipeline."""
    from kb.site.build import build
    from tests.site_project import make_xss_project

    project = make_xss_project(tmp_path_factory.mktemp("xss") / "project")
    build(project)
    return project
