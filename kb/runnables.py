"""Discover, describe and run the runnables without importing torch here.

A runnable is read with :mod:`ast` (its docstring, ``GATE``, preset names and ``Config``
fields) and executed only in a child process with a timeout: ``kb`` itself never imports
torch, never imports a runnable, and only runs files under ``runnable/`` named by a record.
``--set field=value`` is typed and checked against the fields read by ast before any child
starts; the child's threads and OpenMP wait policy are chosen by :func:`child_env`; the
result is judged by the record's gate as a contrast (:func:`judge`).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

from .errors import KBError, NotFound, did_you_mean

#: bf16 dense peak FLOP/s by device-name fragment, for MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}

_CHILD = r"""
import importlib.util, json, platform, sys
from dataclasses import replace
path, root, preset, device, mode = sys.argv[1:6]
overrides = json.loads(sys.argv[6])
sys.path.insert(0, root)  # the shared helpers: import runnable._cli
spec = importlib.util.spec_from_file_location("runnable_under_test", path)
mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod
spec.loader.exec_module(mod)
import torch
cfg = mod.PRESETS[preset]
tup = lambda v: tuple(map(tup, v)) if isinstance(v, list) else v
cfg = replace(cfg, **{k: tup(v) if isinstance(getattr(cfg, k), tuple) else v
                      for k, v in overrides.items()})
if mode == "params":
    with torch.device("meta"):
        model = mod.build_model(cfg)
    out = {"params": sum(p.numel() for p in model.parameters())}
else:
    out = dict(mod.train(cfg, device))
    cpu = None
    if sys.platform.startswith("linux"):
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
    out["device_name"] = (torch.cuda.get_device_name() if device.startswith("cuda")
                          else cpu or platform.processor() or platform.machine())
    out["torch"], out["cuda"] = torch.__version__, torch.version.cuda
    out["threads"] = torch.get_num_threads()
    out.setdefault("seed", getattr(cfg, "seed", None))
print("\n" + json.dumps(out, default=float))
"""


@dataclass
class RunnableInfo:
    id: str
    path: Path
    doc: str
    gate: tuple | None
    presets: list[str]
    arxiv: str | None
    #: Config's fields: name -> (default, annotation); the default is ``...`` where it is not
    #: a literal (``N_SPECIAL + 64``) and only the annotation can type a value.
    fields: dict[str, tuple] = dataclass_field(default_factory=dict)


def _config_fields(tree: ast.Module) -> dict[str, tuple]:
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config"), None)
    out = {}
    for node in cls.body if cls else []:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            try:
                default = ast.literal_eval(node.value) if node.value is not None else ...
            except ValueError:
                default = ...
            out[node.target.id] = (default, ast.unparse(node.annotation))
    return out


def describe(path: Path) -> RunnableInfo:
    """What a runnable file says about itself, read by ``ast`` (nothing is executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    gate, presets = None, []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name = node.targets[0].id
            if name == "GATE":
                gate = tuple(ast.literal_eval(node.value))
            elif name == "PRESETS" and isinstance(node.value, ast.Dict):
                presets = [ast.literal_eval(k) for k in node.value.keys if k is not None]
    doc = ast.get_docstring(tree) or ""
    m = re.search(r"arxiv\.org/abs/(\d{4}\.\d{4,5})", doc)
    return RunnableInfo(
        path.stem, path, doc, gate, presets, m.group(1) if m else None, _config_fields(tree)
    )


def discover(root: Path) -> dict[str, RunnableInfo]:
    return {
        p.stem: describe(p)
        for p in sorted((root / "runnable").glob("*.py"))
        if not p.stem.startswith("_")
    }


# Typed values: the same rules as runnable/_cli.py (tests/runnable/test_cli_parser.py holds the
# two to each other); here without importing torch or the runnable, from Config read by ast.
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def kind_of(default, annotation: str = "") -> tuple[str, str]:
    """(kind, element kind) of a field: from its default value, else from its annotation.

    >>> kind_of((3, 4)), kind_of(..., "float | None"), kind_of(True)
    (('tuple', 'int'), ('float', 'any'), ('bool', 'any'))
    """
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
    """``text`` as a value of ``kind``; ValueError says what the field takes.

    >>> parse_value("false", "bool"), parse_value("1,2", "tuple", "int"), parse_value("3", "float")
    (False, (1, 2), 3.0)
    """
    if kind == "bool":
        if text.strip().lower() in _TRUE + _FALSE:
            return text.strip().lower() in _TRUE
        raise ValueError(f"takes true or false, not {text!r}")
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise ValueError(
                f"takes {'an int' if kind == 'int' else 'a float'}, not {text!r}"
            ) from None
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


def parse_overrides(info: RunnableInfo, items) -> dict:
    """``field=value`` strings (or a dict of them) typed by the runnable's Config, read by ast.

    An unknown field or a value of the wrong type is a :class:`KBError` naming the file, before
    any child starts.
    """
    pairs = (
        items.items()
        if isinstance(items, dict)
        else (i.removeprefix("--").partition("=")[::2] for i in items)
    )
    where = f"runnable/{info.path.name}"
    out = {}
    for key, text in pairs:
        key = key.replace("-", "_")
        if key not in info.fields:
            raise KBError(f"{where}: unknown field {key!r}{did_you_mean(key, info.fields)}")
        if not isinstance(text, str):  # already typed (a library caller)
            out[key] = text
            continue
        try:
            out[key] = parse_value(text, *kind_of(*info.fields[key]))
        except ValueError as e:
            raise KBError(f"{where}: field {key!r} {e}") from None
    return dict(sorted(out.items()))


def _shown(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(map(_shown, value)) + ")"
    return str(value)


def run_key(preset: str, device: str, overrides: dict | None = None) -> str:
    """Where a run is filed in ``results/<id>.json``: ``tiny@cpu``, or with its overrides
    ``tiny+epochs=1+lr=0.01@cpu`` (never as the plain preset's result).

    >>> run_key("tiny", "cpu", {"lr": 0.01, "amp": False})
    'tiny+amp=false+lr=0.01@cpu'
    """
    return (
        preset
        + "".join(f"+{k}={_shown(v)}" for k, v in sorted((overrides or {}).items()))
        + f"@{device}"
    )


def busy_cores(before: str, after: str, ncpu: int) -> float:
    """Cores' worth of CPU time spent between two readings of ``/proc/stat``'s first line.

    >>> busy_cores("cpu 100 0 0 100 0", "cpu 200 0 0 200 0", 2)   # half the time busy
    1.0
    """
    b, a = ([int(x) for x in line.split()[1:]] for line in (before, after))
    total = sum(a) - sum(b)
    idle = (a[3] - b[3]) + (a[4] - b[4] if len(a) > 4 else 0)  # idle + iowait
    return (1 - idle / total) * ncpu if total > 0 else 0.0


def free_cores(cores: int, seconds: float = 0.25) -> int:
    """Of ``cores``, those not busy in other processes now (``cores`` where that can't be read).

    A core counts as taken from 70 % busy on: one spinning process takes one core.
    """
    try:
        with open("/proc/stat") as f:
            before = f.readline()
        time.sleep(seconds)
        with open("/proc/stat") as f:
            after = f.readline()
        busy = busy_cores(before, after, os.cpu_count() or cores)
    except (OSError, ValueError, IndexError):
        return cores
    return max(1, min(cores, cores - int(busy + 0.3)))


def child_env(jobs: int = 1, environ=None, cores: int | None = None, free=free_cores) -> dict:
    """The environment of a runnable's process: threads and OpenMP wait policy chosen on purpose.

    OpenMP threads that spin while they wait steal the core another process needs, and a thread
    on a busy core holds up every parallel region: a run beside one busy core took 2.7x its idle
    time. So the threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, read when torch loads) and
    there are as many as there are free cores for each of ``jobs`` runs, unless the caller set
    ``OMP_NUM_THREADS`` or ``OMP_WAIT_POLICY``.

    >>> e = child_env(2, {}, cores=8, free=lambda n: n)
    >>> e["OMP_NUM_THREADS"], e["OMP_WAIT_POLICY"]
    ('4', 'PASSIVE')
    """
    env = dict(os.environ if environ is None else environ, PYTHONUNBUFFERED="1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not env.get("OMP_NUM_THREADS", "").strip():
        if cores is None:
            cores = (
                len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1
            )
        env["OMP_NUM_THREADS"] = str(max(1, free(cores) // max(1, jobs)))
    return env


def _file_for(base, paper_id: str) -> Path:
    paper = base.paper(paper_id)
    if not paper.runnable:
        raise NotFound(f"paper {paper_id!r} has no runnable")
    path = (base.root / "runnable" / f"{paper.runnable.id}.py").resolve()
    if path.parent != (base.root / "runnable").resolve() or not path.is_file():
        raise NotFound(f"no file runnable/{paper.runnable.id}.py")
    return path


def _child(
    path: Path,
    preset: str,
    device: str,
    mode: str,
    overrides: dict,
    timeout: float,
    env: dict | None = None,
) -> dict:
    root = path.parent.parent
    cmd = [
        sys.executable,
        "-c",
        _CHILD,
        str(path),
        str(root),
        preset,
        device,
        mode,
        json.dumps(overrides),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env or child_env(), cwd=root
        )
    except subprocess.TimeoutExpired:
        raise KBError(f"{path.name}: timed out after {timeout:.0f} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise KBError(f"{path.name}: exited {proc.returncode}: {tail[0]}")
    return json.loads(lines[-1])


def overrides_for(base, paper_id: str, items) -> dict:
    """``--set`` items typed for one paper's runnable (a :class:`KBError` if one is wrong)."""
    return parse_overrides(describe(_file_for(base, paper_id)), items or {}) if items else {}


def params(base, paper_id: str, preset: str = "paper", overrides=None) -> dict:
    """The preset's parameter count, built on the meta device, and the record's figure."""
    paper = base.paper(paper_id)
    typed = overrides_for(base, paper_id, overrides)
    counted = _child(
        _file_for(base, paper_id), preset, "cpu", "params", typed, 300, child_env(free=lambda n: n)
    )["params"]
    stated = next((f.value for f in paper.figures if f.id == paper.runnable.params_figure), None)
    out = {"paper": paper_id, "preset": preset, "params": counted, "stated": stated}
    return dict(out, overrides=typed) if typed else out


def passes(value: float, gate) -> bool:
    """Does ``value`` pass the record's gate?"""
    return value >= gate.value if gate.op == ">=" else value <= gate.value


def judge(out: dict, gate) -> dict:
    """The verdict on a runnable's result, by the record's gate.

    The run passes only if the idea passes the gate, its ablation (where it reports one) judged
    by the same gate fails, and every condition it reports holds. A runnable's own
    ``"passed": false`` that nothing else explains is kept as a condition, so it is named.
    """
    value = float(out["value"])
    verdict = {"value": value, "idea_passed": passes(value, gate)}
    if isinstance(out.get("ablation"), dict):
        a = out["ablation"]
        verdict["ablation"] = {
            "name": str(a["name"]),
            "value": float(a["value"]),
            "passed": passes(float(a["value"]), gate),
        }
    conditions = {str(k): bool(v) for k, v in (out.get("conditions") or {}).items()}
    ablation_ok = not verdict.get("ablation", {}).get("passed", False)
    if (
        out.get("passed") is False
        and verdict["idea_passed"]
        and ablation_ok
        and all(conditions.values())
    ):
        conditions["the runnable's own verdict"] = False
    verdict["conditions"] = conditions
    verdict["passed"] = verdict["idea_passed"] and ablation_ok and all(conditions.values())
    return verdict


def run(
    base,
    paper_id: str,
    preset: str = "tiny",
    device: str = "cpu",
    timeout: float = 600,
    overrides=None,
    env: dict | None = None,
) -> dict:
    """Train one runnable in its own process and judge it by the record's gate.

    ``overrides`` are ``field=value`` strings (or a dict) typed by the runnable's Config; an
    unknown field fails here, before the child starts. ``env`` is the child's environment
    (default :func:`child_env` for one run).
    """
    paper = base.paper(paper_id)
    typed = overrides_for(base, paper_id, overrides)
    start = time.perf_counter()
    out = _child(
        _file_for(base, paper_id), preset, device, "train", typed, timeout, env or child_env()
    )
    gate = paper.runnable.gate
    verdict = judge(out, gate)
    result = {
        "paper": paper_id,
        "preset": preset,
        "device": device,
        "metric": gate.metric,
        "value": verdict["value"],
        "gate": f"{gate.metric} {gate.op} {gate.value}",
        "passed": verdict["passed"],
        "seconds": round(time.perf_counter() - start, 2),
        "params": out.get("params"),
    }
    if "ablation" in verdict:
        result["ablation"] = verdict["ablation"]
    result["conditions"] = verdict["conditions"]
    if isinstance(out.get("history"), dict):
        result["history"] = out["history"]
    if typed:
        result["overrides"] = typed
    for key in ("seed", "threads", "tokens_per_s", "images_per_s", "device_name", "torch", "cuda"):
        if out.get(key) is not None:
            result[key] = out[key]
    peak = next((v for k, v in PEAK_FLOPS.items() if k in str(out.get("device_name"))), None)
    if peak and out.get("model_flops_per_s"):
        result["mfu"] = round(float(out["model_flops_per_s"]) / peak, 4)
    return result


def summary_line(r: dict) -> str:
    """One line of ``kb run``: the idea vs its ablation against the gate, and why it failed.

    >>> print(summary_line({"metric": "iou", "value": 0.9, "gate": "iou >= 0.8", "passed": False,
    ...     "ablation": {"name": "fill", "value": 0.85, "passed": True}, "seconds": 3.0}))
    iou = 0.9000 vs fill = 0.8500 (iou >= 0.8) FAILED: fill passes the gate too in 3.0 s
    """
    a = r.get("ablation")
    line = f"{r['metric']} = {r['value']:.4f}"
    line += f" vs {a['name']} = {a['value']:.4f}" if a else ""
    why = ([f"{a['name']} passes the gate too"] if a and a["passed"] else []) + [
        f"{k} false" for k, v in r.get("conditions", {}).items() if not v
    ]
    verdict = "passed" if r["passed"] else "FAILED" + (": " + "; ".join(why) if why else "")
    return f"{line} ({r['gate']}) {verdict} in {r['seconds']:.1f} s"


def _git(root: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def record(root: Path, result: dict) -> Path:
    """Keep the latest measured result per run key in ``results/<id>.json``.

    Only ever called with a result :func:`run` measured; provenance (commit, whether the tree
    was dirty, date) is added here. A run with overrides is filed under its own key
    (:func:`run_key`), never as the plain preset's result.
    """
    # Dirty means source the run depends on is uncommitted; results/ itself (which recording
    # writes, one run after another) does not count.
    status = _git(root, "status", "--porcelain", "--", ".", ":(exclude)results")
    entry = dict(
        result,
        commit=_git(root, "rev-parse", "--short", "HEAD") or None,
        dirty=None if status is None else bool(status),
        date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    out = root / "results" / f"{result['paper']}.json"
    data = (
        json.loads(out.read_text(encoding="utf-8"))
        if out.is_file()
        else {"paper": result["paper"], "runs": {}}
    )
    data["runs"][run_key(result["preset"], result["device"], result.get("overrides"))] = entry
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out
