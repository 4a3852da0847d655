"""``kb.load(root)``: read, validate, check and graph the records in one call."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from ..errors import NotFound, Problem, ValidationFailed, did_you_mean
from . import checks, lineage
from .loader import Record, read_records
from .schema import Paper


@dataclass
class KnowledgeBase:
    """The validated records of one project and their lineage graph."""

    root: Path
    records: dict[str, Record]
    graph: nx.DiGraph
    warnings: list[Problem] = field(default_factory=list)

    @property
    def papers(self) -> dict[str, Paper]:
        return {i: r.paper for i, r in self.records.items()}

    def paper(self, paper_id: str) -> Paper:
        try:
            return self.records[paper_id].paper
        except KeyError:
            raise NotFound(f"no paper {paper_id!r}{did_you_mean(paper_id, self.records)}") from None

    def course(self) -> list[Paper]:
        """The course's papers in study order."""
        return sorted((p for p in self.papers.values() if p.curriculum), key=lambda p: p.curriculum)


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds ``mkdocs.yml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "mkdocs.yml").is_file() and (folder / "papers").is_dir():
            return folder
    raise NotFound(
        f"no project (a folder with mkdocs.yml and papers/) at or above {here}; pass --root"
    )


@contextmanager
def gc_paused():
    """Hold the cyclic garbage collector while a burst of long-lived objects is made.

    Loading allocates ~100 objects per record and frees almost none, so every collection
    rescans a heap that only grows: at 10,000 records that was 60 % of a warm load
    (BENCHMARKS.md). Reference counting still frees what is dropped; cycles wait until after.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load(root: str | Path | None = None, strict: bool = False) -> KnowledgeBase:
    """Load the knowledge base at ``root`` (default: :func:`find_root`).

    Raises :class:`~kb.errors.ValidationFailed` with every problem found when any
    record is wrong; warnings (unknown keys) are kept on the result unless
    ``strict`` turns them into errors.
    """
    root = Path(root).resolve() if root else find_root()
    with gc_paused():
        records, problems = read_records(root, strict)
        broken = {Path(p.path).stem for p in problems if p.severity == "error"}
        problems += checks.check_all(records, root, broken)
        graph = lineage.build_graph(r.paper for r in records)
        problems += checks.check_cycles(records, graph)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ValidationFailed(problems)
    by_id = {r.paper.id: r for r in records}
    return KnowledgeBase(root, by_id, graph, sorted(problems))
