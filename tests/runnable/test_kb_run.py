"""`kb run` runs only record-named files under runnable/, each in its own process with a timeout;
a crash, a hang or a failed gate is reported by name and the rest carry on. Toy runnables keep
this fast; the real ones are exercised by their own test files."""
import json
import shutil
from pathlib import Path

import pytest

from kb.cli import main

MINI = Path(__file__).parent.parent / "data" / "mini"
# A hang guard, not a verdict: a child that imports torch took 6–7 s on a loaded 2-core machine,
# so the working toys get minutes. Only the hanging toy ("d", which sleeps for ten minutes) is
# run with HANG_TIMEOUT, which it exceeds on any machine.
TIMEOUT = "300"
HANG_TIMEOUT = "5"

TOY = '''"""Toy {name}.

Paper: Toy (A et al., 2020) https://arxiv.org/abs/2001.00001
Run: kb run {name}
"""
import time
from dataclasses import dataclass

import torch

GATE = ("accuracy", ">=", 0.9)


@dataclass
class Config:
    width: int = 3


PRESETS = {{"tiny": Config(), "paper": Config(width=10), "gpu": Config()}}


def build_model(cfg):
    return torch.nn.Linear(cfg.width, cfg.width)


def train(cfg, device="cpu"):
{body}
'''

BODIES = {
    "a": '    return {"metric": "accuracy", "value": 0.95, "passed": True, "params": 12}',
    "b": '    return {"metric": "accuracy", "value": 0.5, "passed": False, "params": 12}',
    "c": '    raise RuntimeError("boom in train")',
    "d": '    time.sleep(600)',
    "e": '    return {"metric": "accuracy", "value": 0.99, "passed": False, "params": 12}',
}


def make_root(tmp_path, monkeypatch, names) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(MINI, root)
    (root / "runnable").mkdir()
    for pid, body in BODIES.items():
        if pid not in names:
            continue
        (root / "runnable" / f"{pid}.py").write_text(TOY.format(name=pid, body=body))
        rec = root / "papers" / f"{pid}.yaml"
        rec.write_text(rec.read_text() + f"runnable:\n  id: {pid}\n  gate: {{metric: accuracy, op: \">=\", value: 0.9}}\n")
    # A stray file no record names must never run.
    (root / "runnable" / "stray.py").write_text('raise SystemExit("stray ran")\n')
    monkeypatch.chdir(root)
    return root


@pytest.fixture()
def kb_root(tmp_path, monkeypatch):
    """The toys that finish (a, b, c, e)."""
    return make_root(tmp_path, monkeypatch, "abce")


def test_run_all_stops_a_hang_and_names_it(tmp_path, monkeypatch, capsys):
    root = make_root(tmp_path, monkeypatch, "ad")
    rc = main(["--root", str(root), "run", "--all", "--json", "--timeout", HANG_TIMEOUT])
    by_id = {r["paper"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rc == 1 and not by_id["d"]["passed"]
    assert "timed out" in by_id["d"]["error"]                          # a hang is stopped


def test_run_all_json_summarises_and_keeps_going(kb_root, capsys):
    rc = main(["--root", str(kb_root), "run", "--all", "--json", "--timeout", TIMEOUT])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    by_id = {r["paper"]: r for r in out["results"]}
    assert sorted(by_id) == ["a", "b", "c", "e"]                      # stray.py is not a record's runnable
    assert out["passed"] == 1 and out["failed"] == ["b", "c", "e"]
    assert by_id["a"]["passed"] and by_id["a"]["value"] == 0.95 and by_id["a"]["gate"] == "accuracy >= 0.9"
    assert set(by_id["a"]) >= {"paper", "preset", "device", "metric", "value", "gate", "passed", "seconds", "params"}
    assert not by_id["b"]["passed"] and by_id["b"]["value"] == 0.5    # under the gate
    assert "boom in train" in by_id["c"]["error"]                      # a crash is named
    assert not by_id["e"]["passed"]                                    # the runnable's own condition counts too


def test_run_all_prints_progress_and_names_failures(kb_root, capsys):
    rc = main(["--root", str(kb_root), "run", "--all", "--timeout", TIMEOUT])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "[1/4] a" in err and "[4/4] e" in err
    assert out.strip().splitlines()[-1] == "1 passed, 3 failed: b, c, e"


def test_params_reads_the_stated_figure_and_counts_on_meta(kb_root, capsys):
    rec = kb_root / "papers" / "a.yaml"
    rec.write_text(rec.read_text().replace("runnable:\n", "figures:\n  - {id: params, value: 110, unit: parameters, source: Table 1}\nrunnable:\n  params_figure: params\n", 1))
    assert main(["--root", str(kb_root), "params", "a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"paper": "a", "preset": "paper", "params": 110, "stated": 110.0}


def test_record_writes_provenance_only_for_measured_runs(kb_root, capsys):
    assert main(["--root", str(kb_root), "run", "a", "--record", "--json"]) == 0
    data = json.loads((kb_root / "results" / "a.json").read_text())
    entry = data["runs"]["tiny@cpu"]
    assert entry["value"] == 0.95 and entry["torch"] and entry["date"] and "device_name" in entry
    assert main(["--root", str(kb_root), "run", "c", "--record", "--json"]) != 0
    assert not (kb_root / "results" / "c.json").exists()                # a crash writes nothing


def test_run_all_with_jobs_gives_the_same_summary_in_record_order(kb_root, capsys):
    main(["--root", str(kb_root), "run", "--all", "--json", "--timeout", TIMEOUT])
    one = json.loads(capsys.readouterr().out)
    rc = main(["--root", str(kb_root), "run", "--all", "--json", "--timeout", TIMEOUT, "--jobs", "3"])
    three = json.loads(capsys.readouterr().out)
    assert rc == 1 and three["jobs"] == 3 and one["jobs"] == 1
    strip = lambda s: [{k: v for k, v in r.items() if k != "seconds"} for r in s["results"]]  # noqa: E731
    assert strip(three) == strip(one) and three["failed"] == one["failed"] == ["b", "c", "e"]
    assert three["wall_seconds"] > 0
    assert three["seconds"] == round(sum(r.get("seconds", 0) for r in three["results"]), 2)  # measured runs only


def test_run_all_with_jobs_prints_every_result_line(kb_root, capsys):
    rc = main(["--root", str(kb_root), "run", "--all", "--timeout", TIMEOUT, "--jobs", "2"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 1 and out[-1] == "1 passed, 3 failed: b, c, e"
    assert sorted(line.split()[0] for line in out[:-1]) == ["a", "b", "c", "e"]
