"""Discover, describe and run the runnables without importing torch here.

A runnable is read with :mod:`ast` (its docstring, ``GATE`` and preset names) and
executed only in a child process with a timeout: ``kb`` itself never imports torch,
never imports a runnable, and only runs files under ``runnable/`` named by a record.
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
from pathlib import Path

from .errors import KBError, NotFound

#: bf16 dense peak FLOP/s by device-name fragment, for MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}

_CHILD = r"""
import importlib.util, json, platform, sys, time
from dataclasses import fields, replace
path, preset, device, mode, overrides = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
spec = importlib.util.spec_from_file_location("runnable_under_test", path)
mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)
import torch
cfg = mod.PRESETS[preset]
names = {f.name for f in fields(cfg)}
cfg = replace(cfg, **{k: type(getattr(cfg, k))(v) for k, v in overrides.items() if k in names})
if mode == "params":
    with torch.device("meta"):
        model = mod.build_model(cfg)
    out = {"params": sum(p.numel() for p in model.parameters())}
else:
    out = dict(mod.train(cfg, device))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), None) \
        if sys.platform.startswith("linux") else None
    out["device_name"] = torch.cuda.get_device_name() if device.startswith("cuda") else (cpu or platform.processor() or platform.machine())
    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
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


def describe(path: Path) -> RunnableInfo:
    """What a runnable file says about itself, read by ``ast`` (nothing is executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    gate, presets = None, []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "GATE":
                gate = tuple(ast.literal_eval(node.value))
            elif name == "PRESETS" and isinstance(node.value, ast.Dict):
                presets = [ast.literal_eval(k) for k in node.value.keys if k is not None]
    doc = ast.get_docstring(tree) or ""
    m = re.search(r"arxiv\.org/abs/(\d{4}\.\d{4,5})", doc)
    return RunnableInfo(path.stem, path, doc, gate, presets, m.group(1) if m else None)


def discover(root: Path) -> dict[str, RunnableInfo]:
    return {p.stem: describe(p) for p in sorted((root / "runnable").glob("*.py")) if not p.stem.startswith("_")}


def _file_for(base, paper_id: str) -> Path:
    paper = base.paper(paper_id)
    if not paper.runnable:
        raise NotFound(f"paper {paper_id!r} has no runnable")
    path = (base.root / "runnable" / f"{paper.runnable.id}.py").resolve()
    if path.parent != (base.root / "runnable").resolve() or not path.is_file():
        raise NotFound(f"no file runnable/{paper.runnable.id}.py")
    return path


def _child(path: Path, preset: str, device: str, mode: str, overrides: dict, timeout: float) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-c", _CHILD, str(path), preset, device, mode, json.dumps(overrides)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=path.parent.parent)
    except subprocess.TimeoutExpired:
        raise KBError(f"{path.name}: timed out after {timeout:.0f} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise KBError(f"{path.name}: exited {proc.returncode}: {tail[0]}")
    return json.loads(lines[-1])


def params(base, paper_id: str, preset: str = "paper") -> dict:
    """The preset's parameter count, built on the meta device, and the record's figure."""
    paper = base.paper(paper_id)
    counted = _child(_file_for(base, paper_id), preset, "cpu", "params", {}, 300)["params"]
    stated = next((f.value for f in paper.figures if f.id == paper.runnable.params_figure), None)
    return {"paper": paper_id, "preset": preset, "params": counted, "stated": stated}


def run(base, paper_id: str, preset: str = "tiny", device: str = "cpu", timeout: float = 600,
        overrides: dict | None = None) -> dict:
    """Train one runnable in its own process and judge it by the record's gate."""
    paper = base.paper(paper_id)
    start = time.perf_counter()
    out = _child(_file_for(base, paper_id), preset, device, "train", overrides or {}, timeout)
    gate = paper.runnable.gate
    value = float(out["value"])
    # The record's gate decides; a runnable may add a condition of its own (ResNet's residual net
    # must also learn), which it reports as "passed": both must hold.
    passed = (value >= gate.value if gate.op == ">=" else value <= gate.value) and out.get("passed", True) is not False
    result = {"paper": paper_id, "preset": preset, "device": device, "metric": gate.metric, "value": value,
              "gate": f"{gate.metric} {gate.op} {gate.value}", "passed": passed,
              "seconds": round(time.perf_counter() - start, 2), "params": out.get("params")}
    for key in ("tokens_per_s", "images_per_s", "device_name", "torch", "cuda"):
        if out.get(key) is not None:
            result[key] = out[key]
    peak = next((v for k, v in PEAK_FLOPS.items() if k in str(out.get("device_name"))), None)
    if peak and out.get("model_flops_per_s"):
        result["mfu"] = round(float(out["model_flops_per_s"]) / peak, 4)
    return result


def record(root: Path, result: dict) -> Path:
    """Keep the latest measured result per preset and device in ``results/<id>.json``.

    Only ever called with a result :func:`run` measured; provenance (commit, date,
    device, versions) is added here.
    """
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    entry = dict(result, commit=commit.stdout.strip() or None,
                 date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    out = root / "results" / f"{result['paper']}.json"
    data = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"paper": result["paper"], "runs": {}}
    data["runs"][f"{result['preset']}@{result['device']}"] = entry
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out
