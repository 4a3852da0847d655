"""Read every record, collect every problem, then stop once.

``read_records`` turns files into validated :class:`~kb.knowledge.schema.Paper` objects and
problems; :mod:`kb.knowledge.checks` adds the checks that need all records at once. Nothing
here raises on the first bad file: a contributor sees every problem in one run.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import Problem, did_you_mean
from . import yamlio
from .schema import Paper, known_keys

KNOWN_KEYS = known_keys()


@dataclass
class Record:
    """A record as read: where it is, its text (for line numbers) and the model."""

    rel: str  # path relative to the project root, with forward slashes
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
        value, pattern = err.get("input"), err["ctx"]["pattern"]
        lower = value.lower() if isinstance(value, str) else value
        hint = (
            f" (ids are lowercase: {lower!r})"
            if lower != value and re.fullmatch(pattern, lower)
            else ""
        )
        return f"{value!r} does not match {pattern}{hint}"
    if kind == "literal_error":
        choices = [
            c.strip().strip("'") for c in err["ctx"]["expected"].replace(" or ", ", ").split(",")
        ]
        return (
            f"{err.get('input')!r} is not one of: {', '.join(choices)}"
            f"{did_you_mean(str(err.get('input')), choices)}"
        )
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return msg[0].lower() + msg[1:]


def parse_record(
    rel: str, raw: bytes, strict: bool = False, cache: ParseCache | None = None
) -> tuple[Record | None, list[Problem]]:
    """Parse and validate one record file. Returns the record (or None) and its problems.

    ``cache`` may supply the YAML data of bytes parsed before; the schema is checked every time.
    """
    guess = rel.rpartition("/")[2].rpartition(".")[0] or rel
    try:
        text = yamlio.decode(raw)
        key = cache.key(raw) if cache else b""
        data = cache.get(key) if cache else None
        if data is None:
            data = yamlio.load(text)
            if cache:
                cache.put(key, data)
    except yamlio.YamlProblem as e:
        return None, [Problem(rel, e.line, e.col, e.field, e.message, guess)]
    if not isinstance(data, dict):
        return None, [
            Problem(
                rel,
                1,
                1,
                "",
                f"a record is a mapping of fields (key: value), not {type(data).__name__}",
                guess,
            )
        ]
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
                problems.append(
                    at(
                        x["loc"],
                        f"unknown key {key!r}{did_you_mean(key, KNOWN_KEYS)}; "
                        "see kb/paper.schema.json",
                        "error" if strict else "warning",
                    )
                )
            real = [x for x in errors if x["type"] != "extra_forbidden"]
            if real or not extra:
                problems += [at(x["loc"], _message(x)) for x in real]
                return None, problems
            data = _without(data, [x["loc"] for x in extra])
    else:  # pragma: no cover - the second pass has no unknown keys left
        return None, problems
    problems += [
        at(loc, message, "error" if strict else "warning")
        for loc, message in placeholders(data, text)
    ]
    return Record(rel, text, paper), problems


#: What ``kb new`` leaves for the author to fill in (kb/templates/paper.yaml.j2).
PLACEHOLDER_YEAR = 2000
_TODO = re.compile(r"\bTODO\b")
_TODO_COMMENT = re.compile(r"#.*\bTODO\b")
_HINTS = {
    "title": "write the paper's title as it gives it",
    "authors": "list the authors as the paper gives them",
    "venue": "write where the paper appeared, or delete the line",
    "summary": "write it in your own words (the overview: 3–6 sentences)",
}


def placeholders(data: Any, text: str) -> list[tuple[tuple, str]]:
    r"""What a record still holds of the scaffold: ``(field path, message)`` for each.

    ``TODO`` in any text, the placeholder year (the ``year`` line keeps ``kb new``'s ``# TODO``
    comment) and an overview with nothing to read in it. ``kb validate`` warns of them;
    ``--strict`` (and so ``kb build``) refuses them: a page must not go out half written.

    >>> text = 'title: "TODO title"\nyear: 2000   # TODO: the year\nsummary: {overview: {en: "…", zh-Hant: 好}}\n'
    >>> for loc, message in placeholders(yamlio.load(text), text):
    ...     print(dotted(loc), "|", message)
    title | 'TODO title' is a placeholder: write the paper's title as it gives it
    year | 2000 is kb new's placeholder year (the line says TODO): write the year the paper appeared and delete the comment
    summary.overview.en | the overview has nothing to read ('…'): write 3–6 sentences in your own words
    """
    found: list[tuple[tuple, str]] = []

    def walk(value: Any, loc: tuple) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*loc, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*loc, i))
        elif isinstance(value, str) and _TODO.search(value):
            shown = value if len(value) <= 40 else value[:39] + "…"
            hint = _HINTS.get(str(loc[0]), "replace the TODO with the real text")
            found.append((loc, f"{shown!r} is a placeholder: {hint}"))

    walk(data, ())
    if data.get("year") == PLACEHOLDER_YEAR:
        line = yamlio.locate(text, ("year",))[0]
        if _TODO_COMMENT.search(text.splitlines()[line - 1]):
            found.append(
                (
                    ("year",),
                    f"{PLACEHOLDER_YEAR} is kb new's placeholder year (the line says TODO): "
                    "write the year the paper appeared and delete the comment",
                )
            )
    overview = (data.get("summary") or {}).get("overview") or {}
    for lang in ("en", "zh-Hant"):
        words = overview.get(lang) if isinstance(overview, dict) else None
        if (
            isinstance(words, str)
            and not _TODO.search(words)
            and not any(ch.isalnum() for ch in words)
        ):
            found.append(
                (
                    ("summary", "overview", lang),
                    f"the overview has nothing to read ({words!r}): "
                    "write 3–6 sentences in your own words",
                )
            )
    return sorted(found, key=lambda f: yamlio.locate(text, f[0]))


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


class ParseCache:
    """YAML data by the bytes it came from, kept in ``.cache/kb/`` between runs.

    Parsing is most of the cost of loading (libyaml composes, Python builds); a record whose
    bytes have not changed is not parsed again. Keys are BLAKE2 digests of the file's bytes;
    the file name carries a digest of the reader's code, so a new reader starts afresh.
    Records are still validated against the schema on every load. ``KB_NO_CACHE=1`` turns it off.
    """

    def __init__(self, root: Path):
        tag = hashlib.blake2b(
            Path(yamlio.__file__).read_bytes() + sys.version.encode(), digest_size=8
        ).hexdigest()
        self.path = root / ".cache" / "kb" / f"yaml-{tag}.marshal"
        self.new: dict[bytes, Any] = {}
        try:
            loaded = marshal.loads(self.path.read_bytes())
            self.old = loaded if isinstance(loaded, dict) else {}
        except Exception:  # missing, unreadable or from another Python: parse afresh
            self.old = {}

    @staticmethod
    def key(raw: bytes) -> bytes:
        return hashlib.blake2b(raw, digest_size=16).digest()

    def get(self, key: bytes) -> Any:
        data = self.old.get(key)
        if data is not None:
            self.new[key] = data
        return data

    def put(self, key: bytes, data: Any) -> None:
        self.new[key] = data

    def save(self) -> None:
        """Keep the entries of this run only; written aside and renamed, so never half a file."""
        if self.new.keys() == self.old.keys():
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for stale in self.path.parent.glob("yaml-*.marshal"):
                stale.unlink()
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(marshal.dumps(self.new))
            os.replace(tmp, self.path)
        except OSError:  # a read-only checkout still loads, just without the cache
            pass


def read_records(root: Path, strict: bool = False) -> tuple[list[Record], list[Problem]]:
    """Read ``root/papers/*.yaml`` in name order."""
    cache = None if os.environ.get("KB_NO_CACHE") else ParseCache(root)
    records: list[Record] = []
    problems: list[Problem] = []
    folder = root / "papers"
    if not folder.is_dir():
        return [], [Problem("papers", 1, 1, "", f"no papers/ folder under {root}")]
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):  # scandir: no Path per file
        rel = f"papers/{entry.name}"
        if entry.name.endswith(".yml"):
            problems.append(
                Problem(rel, 1, 1, "", "records end in .yaml; rename it", entry.name[:-4])
            )
            continue
        if not entry.name.endswith(".yaml") or not entry.is_file():
            continue
        with open(entry.path, "rb") as fh:
            raw = fh.read()
        record, found = parse_record(rel, raw, strict, cache)
        problems += found
        if record:
            records.append(record)
    if cache:
        cache.save()
    return records, problems
