"""The contributor docs stand alone: nothing they send a reader to lies outside the repository."""

from __future__ import annotations

import re

import pytest

from .conftest import ROOT

DOCS = ["README.md", "CONTRIBUTING.md"]

#: A relative path that climbs out of the folder it is written in (../shared/STYLE.md).
_UP = re.compile(r"(?<![\w.])((?:\.\./)+[\w.-][^\s)`'\"<>]*)")
#: An absolute path on someone's machine, or a home folder.
_ABSOLUTE = re.compile(r"(?<![\w:/.])(~/[^\s)`]*|/(?:work|home|root|tmp|Users|mnt)/[^\s)`]*)")
#: A Markdown link's target.
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def outside(text: str) -> list[str]:
    """What in ``text`` (a doc at the repository root) points outside the repository.

    ``../x`` counts as inside only where ``x`` exists in the repository (the schema path in a
    record's first line is written from ``papers/``: ``../kb/paper.schema.json``).
    """
    found = []
    for m in _UP.finditer(text):
        target = m.group(1)
        below = re.sub(r"^(\.\./)+", "", target).split("#")[0]
        if target.count("../") > 1 or not (ROOT / below).exists():
            found.append(target)
    found += [m.group(1) for m in _ABSOLUTE.finditer(text)]
    for m in _LINK.finditer(text):
        target = m.group(1).split("#")[0]
        if (
            target
            and not re.match(r"[a-z]+:", target)
            and not (ROOT / target).resolve().is_relative_to(ROOT)
        ):
            found.append(m.group(1))
    if re.search(r"course checkout|shared/STYLE\.md", text):
        found.append("the course checkout")
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_docs_point_only_inside_the_repository(doc):
    assert outside((ROOT / doc).read_text(encoding="utf-8")) == []


def test_the_outside_check_can_fail():
    assert outside("Read `../shared/STYLE.md` (if you have the course checkout).") == [
        "../shared/STYLE.md",
        "the course checkout",
    ]
    assert outside("see [style](../shared/STYLE.md) or /work/shared/x and ~/notes") == [
        "../shared/STYLE.md",
        "/work/shared/x",
        "~/notes",
        "../shared/STYLE.md",
        "the course checkout",
    ]
    assert (
        outside("First line: `$schema=../kb/paper.schema.json`; [c](CONTRIBUTING.md#words)") == []
    )


def test_contributing_holds_the_house_rules_itself():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for point in (
        "## A record: `papers/<id>.yaml`",
        "### Words",
        "## A runnable: `runnable/<id>.py`",
        "## How the code is written",
        "full-width",
        "numpydoc",
        "file:line:col",
        "kb/data/edge_phrases.yaml",
        "kb validate --strict",
    ):
        assert point in text, point
