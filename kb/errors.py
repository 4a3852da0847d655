"""One exception hierarchy and the `Problem` every check reports.

A problem prints as ``path:line:col: Paper(id='bert') › field.path: message``, the
shape editors and CI logs already understand (after pre-commit/cfgv, with the line
numbers mkdocs lacks).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


class KBError(Exception):
    """Base of every error the knowledge base raises on purpose."""


class NotFound(KBError):
    """A node, record or file that does not exist."""


class NoPath(KBError):
    """Two nodes with no lineage path between them."""


class ValidationFailed(KBError):
    """Loading stopped: the records have problems (see ``.problems``)."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        records = {p.path for p in errors}
        super().__init__(
            f"Aborted: {len(errors)} error{'s' if len(errors) != 1 else ''} "
            f"in {len(records)} record{'s' if len(records) != 1 else ''}."
        )


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about one field of one record.

    >>> print(Problem("papers/bert.yaml", 7, 5, "lineage[1].from", "unknown node 'x'", record="bert"))
    papers/bert.yaml:7:5: Paper(id='bert') › lineage[1].from: unknown node 'x'
    """

    path: str
    line: int
    col: int
    field: str
    message: str
    record: str | None = None
    severity: str = field(default="error", compare=False)

    def __str__(self) -> str:
        who = f"Paper(id={self.record!r})" if self.record else "Paper(id=?)"
        where = f" › {self.field}" if self.field else ""
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.path}:{self.line}:{self.col}: {tag}{who}{where}: {self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or ``''``.

    >>> did_you_mean("transfomer", ["transformer", "bert"])
    " (did you mean 'transformer'?)"
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
