"""YAML in, safely, fast, with line numbers when something is wrong.

Records are read with libyaml's C loader when present. That loader refuses what a
record never needs — tags beyond the safe ones, aliases (so no alias bombs), and
duplicate keys (PyYAML would silently keep the last). Positions are recovered only
for files that have a problem: :func:`locate` composes the node tree once and
walks the field path to the key or item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 1_000_000  # a record is a few kB; a megabyte is surely a mistake


class YamlProblem(Exception):
    """A parse problem at a position (1-based line and column)."""

    def __init__(self, message: str, line: int = 1, col: int = 1, field: str = ""):
        super().__init__(message)
        self.message, self.line, self.col, self.field = message, line, col, field


_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
#: Plain scalars that can be anything but a string start with one of these (YAML 1.1's implicit
#: resolvers are keyed by first character); every other plain scalar is a string.
_MAYBE_TYPED = frozenset("-+.0123456789~nNtTfFyYoO")
_WORDS = frozenset(
    w
    for b in ("yes", "no", "true", "false", "on", "off", "null")
    for w in (b, b.title(), b.upper())
)
_SCALARS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    _STR,
    "tag:yaml.org,2002:timestamp",
}


try:  # libyaml parses and composes in C
    from yaml.cyaml import CParser

    _PARSER: tuple = (CParser,)
except ImportError:
    CParser = None
if CParser is None:  # pure-Python PyYAML: the same stages in Python
    _PARSER = (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer)


class _Composer(*_PARSER, yaml.resolver.Resolver):  # type: ignore[misc]
    """Parse and compose a node tree (nothing constructed yet). ``resolve`` skips the regex
    resolvers for plain scalars that cannot be anything but a string."""

    def __init__(self, stream):
        if CParser is not None:
            CParser.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def descend_resolver(self, current_node, current_index):  # no path resolvers here
        pass

    def ascend_resolver(self):
        pass

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode and implicit[0] and value:
            first = value[0]
            if first not in _MAYBE_TYPED or (first.isalpha() and value not in _WORDS):
                return _STR
        return super().resolve(kind, value, implicit)


_typed = yaml.constructor.SafeConstructor()


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _build(node, seen: set) -> Any:
    """Plain Python data from a composed node tree: strings, numbers, booleans, null, lists and
    dicts only. Dates stay strings; aliases, other tags and duplicate keys are refused."""
    if id(node) in seen:  # the composer hands back the anchored node itself for an alias
        raise YamlProblem("aliases and anchors are not allowed in records", *_mark(node))
    seen.add(id(node))
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag == _MAP:
        out: dict[Any, Any] = {}
        first: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _build(key_node, seen)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise YamlProblem("a key must be a plain value", *_mark(key_node))
            if key in out:
                raise YamlProblem(
                    f"duplicate key {key!r} (first on line {first[key].start_mark.line + 1})",
                    *_mark(key_node),
                    str(key),
                )
            first[key] = key_node
            out[key] = _build(value_node, seen)
        return out
    if tag == _SEQ:
        return [_build(item, seen) for item in node.value]
    if tag in _SCALARS and isinstance(node, yaml.ScalarNode):
        if tag == "tag:yaml.org,2002:timestamp":  # a record's dates are text in a fixed format
            return node.value
        return _typed.construct_object(node)
    raise YamlProblem(f"invalid YAML: tag {tag!r} is not allowed in records", *_mark(node))


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
        raise YamlProblem(
            f"not UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8", line
        ) from None


def load(text: str) -> Any:
    """Parse one YAML document of a record.

    >>> load("id: bert\\nyear: 2019\\n")
    {'id': 'bert', 'year': 2019}
    >>> load("a: 1\\na: 2\\n")
    Traceback (most recent call last):
    ...
    kb.knowledge.yamlio.YamlProblem: duplicate key 'a' (first on line 1)
    """
    composer = _Composer(text)
    try:
        node = composer.get_single_node()
        return None if node is None else _build(node, set())
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
    finally:
        composer.dispose()


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
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            node = node.value[step]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1
