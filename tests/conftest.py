"""Shared fixtures: the project root and records read one at a time."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

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


def runnable(paper_id: str) -> ModuleType:
    """runnable/<paper_id>.py loaded fresh by path (ids with a hyphen cannot be imported by name),
    registered in sys.modules first because dataclasses look their module up there."""
    spec = importlib.util.spec_from_file_location(
        f"runnable_{paper_id.replace('-', '_')}", ROOT / "runnable" / f"{paper_id}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def stated_in(paper_id: str):
    """A check that the worked example of ``paper_id`` states each given text in both languages."""
    example = record(paper_id).teaching.worked_example

    def stated(*texts: str) -> None:
        for lang, text in (("en", example.en), ("zh-Hant", example.zh_hant)):
            for t in texts:
                assert t in text, f"worked example ({lang}) of {paper_id} should state {t!r}"

    return stated


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
