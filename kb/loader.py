"""Read every record, collect every problem, then stop once.

``read_records`` turns files into validated :class:`~kb.schema.Paper` objects and
problems; :mod:`kb.checks` adds the checks that need all records at once. Nothing
here raises on the first bad file: a contributor sees every problem in one run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import yamlio
from .errors import Problem, did_you_mean
from .schema import Paper, known_keys

KNOWN_KEYS = known_keys()


@dataclass
class Record:
    """A record as read: where it is, its text (for line numbers) and the model."""

    rel: str          # path relative to the project root, with forward slashes
    text: str
    paper: Paper

    def problem(self, path: tuple, message: str, severity: str = "error") -> Problem:
        line, col = yamlio.locate(self.text, path)
        return Problem(self.rel, line, col, dotted(path), message, self.paper.id, severity)


def dotted(loc: tuple) -> str:
    """``('lineage', 1, 'from')`` → ``'lineage[1].from'``.

    >>> dotted(('lineage', 1, 'from'))
    'lineage[1].from'
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: dict) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        value = err.get("input")
        return f"{value!r} does not match {err['ctx']['pattern']}"
    if kind == "literal_error":
        choices = [c.strip().strip("'") for c in err["ctx"]["expected"].replace(" or ", ", ").split(",")]
        return (f"{err.get('input')!r} is not one of: {', '.join(choices)}"
                f"{did_you_mean(str(err.get('input')), choices)}")
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return msg[0].lower() + msg[1:]


def parse_record(rel: str, raw: bytes, strict: bool = False) -> tuple[Record | None, list[Problem]]:
    """Parse and validate one record file. Returns the record (or None) and its problems."""
    guess = Path(rel).stem
    try:
        text = yamlio.decode(raw)
        data = yamlio.load(text)
    except yamlio.YamlProblem as e:
        return None, [Problem(rel, e.line, e.col, e.field, e.message, guess)]
    if not isinstance(data, dict):
        return None, [Problem(rel, 1, 1, "", "a record is a mapping of fields (key: value), "
                              f"not {type(data).__name__}", guess)]
    record_id = data.get("id") if isinstance(data.get("id"), str) else guess
    problems: list[Problem] = []

    def at(loc: tuple, message: str, severity: str = "error") -> Problem:
        line, col = yamlio.locate(text, loc)
        return Problem(rel, line, col, dotted(loc), message, record_id, severity)

    for _ in range(2):  # second pass after dropping unknown keys
        try:
            paper = Paper.model_validate(data)
            break
        except ValidationError as e:
            errors = e.errors(include_url=False)
            extra = [x for x in errors if x["type"] == "extra_forbidden"]
            for x in extra:
                key = str(x["loc"][-1])
                problems.append(at(x["loc"], f"unknown key {key!r}{did_you_mean(key, KNOWN_KEYS)}; "
                                             "see kb/paper.schema.json", "error" if strict else "warning"))
            real = [x for x in errors if x["type"] != "extra_forbidden"]
            if real or not extra:
                problems += [at(x["loc"], _message(x)) for x in real]
                return None, problems
            data = _without(data, [x["loc"] for x in extra])
    else:  # pragma: no cover - the second pass has no unknown keys left
        return None, problems
    return Record(rel, text, paper), problems


def _without(data: Any, locs: list[tuple]) -> Any:
    """A copy of ``data`` with the keys at ``locs`` removed."""
    import copy

    data = copy.deepcopy(data)
    for loc in locs:
        node = data
        for step in loc[:-1]:
            node = node[step]
        node.pop(loc[-1], None)
    return data


def read_records(root: Path, strict: bool = False) -> tuple[list[Record], list[Problem]]:
    """Read ``root/papers/*.yaml`` in name order."""
    records: list[Record] = []
    problems: list[Problem] = []
    folder = root / "papers"
    if not folder.is_dir():
        return [], [Problem("papers", 1, 1, "", f"no papers/ folder under {root}")]
    for path in sorted(folder.iterdir()):
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".yml":
            problems.append(Problem(rel, 1, 1, "", "records end in .yaml; rename it", path.stem))
            continue
        if path.suffix != ".yaml" or not path.is_file():
            continue
        record, found = parse_record(rel, path.read_bytes(), strict)
        problems += found
        if record:
            records.append(record)
    return records, problems
