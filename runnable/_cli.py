"""The one command line every runnable shares.

``--preset NAME --device cpu|cuda --json --field=value``.

A runnable's ``main`` is one line::

    def main(argv=None) -> int:
        return run_main(__doc__, PRESETS, train, argv, GATE)

``--field=value`` overrides one field of the preset's ``Config``, typed by the field's default:
``true``/``false`` for a bool, ``3`` for an int, ``0.01`` for a float, ``(1,2)`` or ``1,2`` for a
tuple, anything for a str. ``kb run --set field=value`` reads values by the same rules
(``kb/runnables.py``, which never imports torch; a test keeps the two in step).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import json
import os
import sys

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def kind_of(default, annotation: str = "") -> tuple[str, str]:
    """(kind, element kind) of a field: from its default value, else from its annotation."""
    for t in (bool, int, float, str, tuple, list):  # bool before int: True is an int
        if isinstance(default, t):
            elem = kind_of(default[0])[0] if t in (tuple, list) and default else "any"
            return t.__name__, elem
    ann = annotation.replace(" ", "").replace("Optional[", "").replace("|None", "")
    for name in ("bool", "int", "float", "str", "tuple", "list"):
        if ann.lower().startswith(name):
            inner = ann[len(name) :].strip("[]").split(",")[0]
            return name, inner if inner in ("bool", "int", "float", "str") else "any"
    return "any", "any"


def parse_value(text: str, kind: str, elem: str = "any"):
    """``text`` as a value of ``kind``; ValueError says what the field takes."""
    if kind == "bool":
        if text.strip().lower() in TRUE + FALSE:
            return text.strip().lower() in TRUE
        raise ValueError(f"takes true or false, not {text!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"takes an int, not {text!r}") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"takes a float, not {text!r}") from None
    if kind == "str":
        return text
    if kind in ("tuple", "list"):
        s = text.strip()
        if s[:1] in "([" and s[-1:] in ")]":
            s = s[1:-1]
        try:
            items = ast.literal_eval(f"({s},)") if s.strip() else ()
        except (ValueError, SyntaxError):
            items = [w.strip() for w in s.split(",")]  # bare words: a tuple of strings
        items = [
            parse_value(str(v), elem) if elem != "any" and not isinstance(v, tuple) else v
            for v in items
        ]
        return tuple(items) if kind == "tuple" else list(items)
    try:  # no default to go by
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def override(cfg, items: list[str], where: str = "runnable"):
    """``cfg`` with each ``--field=value`` of ``items`` applied, typed by the field's default."""
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for item in items:
        key, sep, text = item.removeprefix("--").partition("=")
        key = key.replace("-", "_")
        if not sep or key not in fields:
            hint = did_you_mean(key, fields) if sep else " (write --field=value)"
            raise ValueError(f"{where}: unknown field {key!r}{hint}")
        f = fields[key]
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        try:
            value = parse_value(text, *kind_of(default, str(f.type)))
        except ValueError as e:
            raise ValueError(f"{where}: field {key!r} {e}") from None
        cfg = dataclasses.replace(cfg, **{key: value})
    return cfg


def judge(value: float, gate) -> bool:
    """Does ``value`` pass ``gate`` = (metric, op, threshold)?"""
    return value >= gate[2] if gate[1] == ">=" else value <= gate[2]


def summary(result: dict, gate) -> str:
    """One line: the idea vs its ablation against the gate, then the failed conditions."""
    line = f"{result['metric']} = {result['value']:.4f}"
    ablation = result.get("ablation")
    if ablation:
        line += f" vs {ablation['name']} = {ablation['value']:.4f}"
    if gate:
        line += f" ({gate[0]} {gate[1]} {gate[2]})"
    line += ": passed" if result.get("passed") else ": FAILED"
    failed = [k for k, v in (result.get("conditions") or {}).items() if not v]
    if ablation and gate and judge(float(ablation["value"]), gate):
        failed.insert(0, f"{ablation['name']} passes the gate too")
    return line + (f" ({'; '.join(failed)})" if failed else "")


def run_main(doc: str, presets: dict, train, argv=None, gate=None) -> int:
    """Parse ``argv``, train the preset, print the result; exit status 0 iff it passed."""
    ap = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    ap.add_argument("--preset", default="tiny", choices=list(presets))
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args, rest = ap.parse_known_args(argv)
    file = getattr(sys.modules.get(getattr(train, "__module__", "")), "__file__", None)
    where = os.path.join(*os.path.normpath(file).split(os.sep)[-2:]) if file else "runnable"
    try:
        cfg = override(presets[args.preset], rest, where)
    except ValueError as e:
        ap.error(str(e))
    result = train(cfg, args.device)
    dist = sys.modules.get("torch.distributed")  # under torchrun: rank 0 reports
    ranked = dist is not None and dist.is_available() and dist.is_initialized()
    if not ranked or dist.get_rank() == 0:
        scalars = {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool))}
        print(
            json.dumps(result, default=float)
            if args.json
            else "\n".join(
                [summary(result, gate)]
                + [
                    f"{k}: {v}"
                    for k, v in scalars.items()
                    if k not in ("metric", "value", "passed")
                ]
            ),
            flush=True,
        )
    if ranked:
        dist.destroy_process_group()
    return 0 if result["passed"] else 1
