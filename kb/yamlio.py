"""YAML in, safely, fast, with line numbers when something is wrong.

Records are read with libyaml's C loader when present. That loader refuses what a
record never needs — tags beyond the safe ones, aliases (so no alias bombs), and
duplicate keys (PyYAML would silently keep the last). Positions are recovered only
for files that have a problem: :func:`locate` composes the node tree once and
walks the field path to the key or item.
"""
from __future__ import annotations

from typing import Any, Sequence

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 1_000_000  # a record is a few kB; a megabyte is surely a mistake


class YamlProblem(Exception):
    """A parse problem at a position (1-based line and column)."""

    def __init__(self, message: str, line: int = 1, col: int = 1, field: str = ""):
        super().__init__(message)
        self.message, self.line, self.col, self.field = message, line, col, field


class _RecordLoader(Loader):  # type: ignore[misc, valid-type]
    def construct_object(self, node, deep=False):
        if node in self.constructed_objects:  # the same node twice: an alias
            raise YamlProblem("aliases and anchors are not allowed in records",
                              node.start_mark.line + 1, node.start_mark.column + 1)
        return super().construct_object(node, deep)

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise YamlProblem(
                    f"duplicate key {key!r} (first on line {seen[key].start_mark.line + 1})",
                    key_node.start_mark.line + 1, key_node.start_mark.column + 1, str(key))
            seen[key] = key_node
        # keys were constructed above; reset so the base class does not see them as aliases
        for key_node, _ in node.value:
            self.constructed_objects.pop(key_node, None)
        return super().construct_mapping(node, deep)


# Plain YAML dates/times stay strings: a record's dates are text in a fixed format.
for _tag in ("tag:yaml.org,2002:timestamp",):
    _RecordLoader.add_constructor(_tag, _RecordLoader.construct_yaml_str)


def decode(raw: bytes) -> str:
    """Bytes of a record file to text: UTF-8 (a BOM is dropped), no NUL bytes."""
    if len(raw) > MAX_BYTES:
        raise YamlProblem(f"file is {len(raw):,} bytes; a record must be under {MAX_BYTES:,}")
    if b"\x00" in raw:
        raise YamlProblem("binary file (NUL byte); a record is UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise YamlProblem(f"not UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8", line) from None


def load(text: str) -> Any:
    """Parse one YAML document of a record.

    >>> load("id: bert\\nyear: 2019\\n")
    {'id': 'bert', 'year': 2019}
    >>> load("a: 1\\na: 2\\n")
    Traceback (most recent call last):
    ...
    kb.yamlio.YamlProblem: duplicate key 'a' (first on line 1)
    """
    try:
        return yaml.load(text, Loader=_RecordLoader)
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or e.context or "invalid YAML"
        if "could not determine a constructor" in str(e):
            what = f"tag {str(e).split('tag ')[-1].split(chr(10))[0]} is not allowed in records"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        lines = text.splitlines()
        bad_line = lines[line - 1] if 0 < line <= len(lines) else ""
        hint = "; use spaces, not tabs, to indent" if "\t" in bad_line else ""
        raise YamlProblem(f"invalid YAML: {what}{hint}", line, col) from None
    except yaml.YAMLError as e:
        raise YamlProblem(f"invalid YAML: {e}") from None


def locate(text: str, path: Sequence[str | int]) -> tuple[int, int]:
    """1-based (line, col) of the deepest node on ``path`` that exists.

    A mapping entry points at its key, a list item at the item.

    >>> locate("a:\\n  b: [1, 2]\\n", ["a", "b", 1])
    (2, 10)
    >>> locate("a: 1\\n", ["missing"])
    (1, 1)
    """
    try:
        node = yaml.compose(text, Loader=Loader)
    except yaml.YAMLError:
        return 1, 1
    if node is None:
        return 1, 1
    mark = node.start_mark
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(step):
                    mark, node = k.start_mark, v
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1
