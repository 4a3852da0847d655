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
    flag: bool = True
    sizes: tuple = (1, 2)
    lr: float = 0.1
    seed: int = 0


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
    "d": "    time.sleep(600)",
    "e": '    return {"metric": "accuracy", "value": 0.99, "passed": False, "params": 12}',
}
# The contract: the idea, a named ablation judged by the same gate, extra conditions.
CONTRACT = {
    "a": '    return {"metric": "accuracy", "value": 0.95, "params": 12, "passed": True,\n'
    '            "ablation": {"name": "no-idea", "value": 0.5},\n'
    '            "conditions": {"learns": True},\n'
    '            "history": {"x": "epoch", "idea": [0.5, 0.95], "ablation": [0.4, 0.5]}}',
    "b": '    return {"metric": "accuracy", "value": 0.95, "params": 12, "passed": True,\n'
    '            "ablation": {"name": "no-idea", "value": 0.93}, "conditions": {}}',
    "c": '    return {"metric": "accuracy", "value": 0.95, "params": 12, "passed": True,\n'
    '            "ablation": {"name": "no-idea", "value": 0.5},\n'
    '            "conditions": {"learns": True, "box-accuracy": False}}',
}
# Passes only if every --set arrived typed: a bool, a tuple, a float.
TYPED = {
    "a": '    open("started", "w").close()\n'
    "    ok = cfg.flag is False and cfg.sizes == (3, 4) and cfg.lr == 0.5 and cfg.width == 3\n"
    '    return {"metric": "accuracy", "value": 0.95 if ok else 0.1, "params": 12}',
}


def make_root(tmp_path, monkeypatch, names, bodies=BODIES) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(MINI, root)
    (root / "runnable").mkdir()
    for pid, body in bodies.items():
        if pid not in names:
            continue
        (root / "runnable" / f"{pid}.py").write_text(TOY.format(name=pid, body=body))
        rec = root / "papers" / f"{pid}.yaml"
        rec.write_text(
            rec.read_text()
            + f'runnable:\n  id: {pid}\n  gate: {{metric: accuracy, op: ">=", value: 0.9}}\n'
        )
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
    assert "timed out" in by_id["d"]["error"]  # a hang is stopped


def test_run_all_json_summarises_and_keeps_going(kb_root, capsys):
    rc = main(["--root", str(kb_root), "run", "--all", "--json", "--timeout", TIMEOUT])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    by_id = {r["paper"]: r for r in out["results"]}
    assert sorted(by_id) == ["a", "b", "c", "e"]  # stray.py is not a record's runnable
    assert out["passed"] == 1 and out["failed"] == ["b", "c", "e"]
    assert (
        by_id["a"]["passed"]
        and by_id["a"]["value"] == 0.95
        and by_id["a"]["gate"] == "accuracy >= 0.9"
    )
    assert set(by_id["a"]) >= {
        "paper",
        "preset",
        "device",
        "metric",
        "value",
        "gate",
        "passed",
        "seconds",
        "params",
    }
    assert not by_id["b"]["passed"] and by_id["b"]["value"] == 0.5  # under the gate
    assert "boom in train" in by_id["c"]["error"]  # a crash is named
    assert not by_id["e"]["passed"]  # the runnable's own condition counts too


def test_run_all_prints_progress_and_names_failures(kb_root, capsys):
    rc = main(["--root", str(kb_root), "run", "--all", "--timeout", TIMEOUT])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "[1/4] a" in err and "[4/4] e" in err
    assert out.strip().splitlines()[-1] == "1 passed, 3 failed: b, c, e"


def test_params_reads_the_stated_figure_and_counts_on_meta(kb_root, capsys):
    rec = kb_root / "papers" / "a.yaml"
    rec.write_text(
        rec.read_text().replace(
            "runnable:\n",
            "figures:\n  - {id: params, value: 110, unit: parameters, source: Table 1}\nrunnable:\n  params_figure: params\n",
            1,
        )
    )
    assert main(["--root", str(kb_root), "params", "a", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "paper": "a",
        "preset": "paper",
        "params": 110,
        "stated": 110.0,
    }


def test_record_writes_provenance_only_for_measured_runs(kb_root, capsys):
    assert main(["--root", str(kb_root), "run", "a", "--record", "--json"]) == 0
    data = json.loads((kb_root / "results" / "a.json").read_text())
    entry = data["runs"]["tiny@cpu"]
    assert entry["value"] == 0.95 and entry["torch"] and entry["date"] and "device_name" in entry
    assert main(["--root", str(kb_root), "run", "c", "--record", "--json"]) != 0
    assert not (kb_root / "results" / "c.json").exists()  # a crash writes nothing


def test_run_all_with_jobs_gives_the_same_summary_in_record_order(kb_root, capsys):
    main(["--root", str(kb_root), "run", "--all", "--json", "--timeout", TIMEOUT])
    one = json.loads(capsys.readouterr().out)
    rc = main(
        ["--root", str(kb_root), "run", "--all", "--json", "--timeout", TIMEOUT, "--jobs", "3"]
    )
    three = json.loads(capsys.readouterr().out)
    assert rc == 1 and three["jobs"] == 3 and one["jobs"] == 1
    strip = lambda s: [{k: v for k, v in r.items() if k != "seconds"} for r in s["results"]]  # noqa: E731
    assert strip(three) == strip(one) and three["failed"] == one["failed"] == ["b", "c", "e"]
    assert three["wall_seconds"] > 0
    assert three["seconds"] == round(
        sum(r.get("seconds", 0) for r in three["results"]), 2
    )  # measured runs only


def test_run_all_with_jobs_prints_every_result_line(kb_root, capsys):
    rc = main(["--root", str(kb_root), "run", "--all", "--timeout", TIMEOUT, "--jobs", "2"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 1 and out[-1] == "1 passed, 3 failed: b, c, e"
    assert sorted(line.split()[0] for line in out[:-1]) == ["a", "b", "c", "e"]


def test_run_json_judges_the_ablation_by_the_gate_and_names_conditions(
    tmp_path, monkeypatch, capsys
):
    root = make_root(tmp_path, monkeypatch, "abc", CONTRACT)
    rc = main(["--root", str(root), "run", "--all", "--json", "--timeout", TIMEOUT])
    by_id = {r["paper"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert rc == 1
    f, g, h = by_id["a"], by_id["b"], by_id["c"]
    assert f["passed"] and f["ablation"] == {"name": "no-idea", "value": 0.5, "passed": False}
    assert f["conditions"] == {"learns": True}
    assert f["history"] == {"x": "epoch", "idea": [0.5, 0.95], "ablation": [0.4, 0.5]}
    assert not g["passed"] and g["ablation"]["passed"]  # the ablation passes: no proof
    assert not h["passed"] and h["conditions"]["box-accuracy"] is False
    assert f["seed"] == 0 and f["threads"] >= 1 and f["device_name"]


def test_run_text_shows_idea_against_ablation_and_why_it_failed(tmp_path, monkeypatch, capsys):
    root = make_root(tmp_path, monkeypatch, "b", CONTRACT)
    assert main(["--root", str(root), "run", "b", "--timeout", TIMEOUT]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("b ")
    assert "accuracy = 0.9500 vs no-idea = 0.9300 (accuracy >= 0.9)" in line
    assert "FAILED: no-idea passes the gate too" in line


def test_summary_line_names_a_false_condition():
    from kb.runnables import summary_line

    r = {
        "metric": "iou",
        "value": 0.8,
        "gate": "iou >= 0.7",
        "passed": False,
        "seconds": 2.0,
        "ablation": {"name": "fill", "value": 0.5, "passed": False},
        "conditions": {"learns": True, "box-accuracy": False},
    }
    assert summary_line(r) == (
        "iou = 0.8000 vs fill = 0.5000 (iou >= 0.7) FAILED: box-accuracy false in 2.0 s"
    )


def test_a_runnables_own_failed_verdict_is_named_when_nothing_else_explains_it():
    from kb.knowledge.schema import Gate
    from kb.runnables import judge

    gate = Gate(metric="accuracy", op=">=", value=0.9)
    v = judge({"value": 0.99, "passed": False}, gate)
    assert not v["passed"] and v["conditions"] == {"the runnable's own verdict": False}
    v = judge({"value": 0.99, "passed": False, "ablation": {"name": "x", "value": 0.95}}, gate)
    assert not v["passed"] and v["conditions"] == {}  # the ablation explains it
    assert judge(
        {"value": 0.5, "ablation": {"name": "x", "value": 0.95}},
        Gate(metric="loss", op="<=", value=0.6),
    )["passed"]  # <=: 0.95 fails the gate


def test_set_values_are_typed_by_the_config_defaults(tmp_path, monkeypatch, capsys):
    root = make_root(tmp_path, monkeypatch, "a", TYPED)
    rc = main(
        [
            "--root",
            str(root),
            "run",
            "a",
            "--json",
            "--timeout",
            TIMEOUT,
            "--set",
            "flag=false",
            "--set",
            "sizes=3,4",
            "--set",
            "lr=0.5",
            "--record",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["passed"], out
    assert out["overrides"] == {"flag": False, "lr": 0.5, "sizes": [3, 4]}
    runs = json.loads((root / "results" / "a.json").read_text())["runs"]
    assert list(runs) == ["tiny+flag=false+lr=0.5+sizes=(3,4)@cpu"]  # never filed as tiny@cpu
    assert runs["tiny+flag=false+lr=0.5+sizes=(3,4)@cpu"]["overrides"]["sizes"] == [3, 4]


@pytest.mark.parametrize(
    "setting, message",
    [
        ("widht=4", "runnable/a.py: unknown field 'widht' (did you mean 'width'?)"),
        ("width=0.5", "runnable/a.py: field 'width' takes an int, not '0.5'"),
        ("flag=maybe", "runnable/a.py: field 'flag' takes true or false, not 'maybe'"),
    ],
)
def test_a_bad_set_fails_before_any_child_starts(tmp_path, monkeypatch, capsys, setting, message):
    root = make_root(tmp_path, monkeypatch, "a", TYPED)
    assert main(["--root", str(root), "run", "a", "--set", setting]) == 1
    assert capsys.readouterr().err.strip() == f"kb: error: {message}"
    assert not (root / "started").exists()  # train never ran
    assert main(["--root", str(root), "run", "--all", "--set", setting]) == 1  # nor with --all
    assert not (root / "started").exists()


def test_record_notes_a_dirty_tree_threads_and_seed(tmp_path, monkeypatch, capsys):
    import subprocess

    root = make_root(tmp_path, monkeypatch, "a")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "toy"], cwd=root, check=True)
    (root / "papers" / "a.yaml").write_text((root / "papers" / "a.yaml").read_text() + "\n")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the caller's count wins
    assert main(["--root", str(root), "run", "a", "--record", "--json"]) == 0
    entry = json.loads((root / "results" / "a.json").read_text())["runs"]["tiny@cpu"]
    assert entry["dirty"] is True and len(entry["commit"]) >= 7
    assert entry["threads"] == 1 and entry["seed"] == 0 and "overrides" not in entry


def test_results_already_recorded_do_not_make_the_tree_dirty(tmp_path, monkeypatch, capsys):
    import subprocess

    root = make_root(tmp_path, monkeypatch, "a")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "toy"], cwd=root, check=True)
    assert main(["--root", str(root), "run", "a", "--record", "--json"]) == 0
    assert (root / "results" / "a.json").is_file()  # uncommitted output of the first run
    assert main(["--root", str(root), "run", "a", "--record", "--json"]) == 0
    entry = json.loads((root / "results" / "a.json").read_text())["runs"]["tiny@cpu"]
    assert entry["dirty"] is False


def test_child_env_waits_passively_and_shares_the_free_cores():
    from kb.runnables import child_env

    env = child_env(1, {}, cores=4, free=lambda n: n - 1)  # one core busy elsewhere
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == "3"
    assert child_env(2, {}, cores=4, free=lambda n: n)["OMP_NUM_THREADS"] == "2"
    assert child_env(8, {}, cores=4, free=lambda n: n)["OMP_NUM_THREADS"] == "1"
    asked = child_env(1, {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "ACTIVE"}, cores=2)
    assert asked["OMP_NUM_THREADS"] == "3" and asked["OMP_WAIT_POLICY"] == "ACTIVE"


def test_busy_cores_reads_two_proc_stat_lines():
    from kb.runnables import busy_cores

    # user nice system idle iowait: 300 of 400 jiffies busy on a 2-core machine = 1.5 cores.
    assert busy_cores("cpu 0 0 0 0 0 0 0", "cpu 250 0 50 50 50 0 0", 2) == 1.5
    assert busy_cores("cpu 5 0 0 5 0", "cpu 5 0 0 5 0", 2) == 0.0  # no time passed


def test_pages_show_idea_against_ablation_with_provenance(tmp_path):
    from kb import load
    from kb.site.render import render
    from tests.site_project import make_project

    project = make_project(tmp_path / "p")
    plain = {
        "paper": "mlm",
        "preset": "tiny",
        "device": "cpu",
        "metric": "accuracy",
        "value": 0.95,
        "gate": "accuracy >= 0.9",
        "passed": True,
        "seconds": 12.5,
        "params": 10,
        "ablation": {"name": "no <b>mask</b> | bag", "value": 0.5, "passed": False},
        "conditions": {"learns": True, "beats chance": False},
        "device_name": "AMD EPYC 7B13",
        "threads": 2,
        "seed": 1,
        "commit": "abc1234",
        "dirty": True,
        "date": "2026-12-03T18:00:00Z",
    }
    tuned = dict(plain, overrides={"lr": 0.01}, value=0.97, dirty=False)
    (project / "results" / "mlm.json").write_text(
        json.dumps({"paper": "mlm", "runs": {"tiny+lr=0.01@cpu": tuned, "tiny@cpu": plain}})
    )
    pages = render(load(project))
    lines = pages["papers/mlm.md"].splitlines()
    row = next(line for line in lines if line.startswith("| tiny on cpu"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == [
        "tiny on cpu",
        "accuracy = 0.9500",
        "no &lt;b&gt;mask&lt;/b&gt; &#124; bag = 0.5000",  # escaped, pipe too
        "✓ learns<br>✗ beats chance",
        "passed",
    ]
    assert cells[6] == "AMD EPYC 7B13, 2 threads · seed 1 · `abc1234` (dirty tree) · 2026-12-03"
    rows = [line for line in lines if line.startswith("| tiny")]
    assert rows[1].startswith("| tiny +lr=0.01 on cpu | accuracy = 0.9700 |")  # after the plain
    table = pages["runnables.md"]
    assert "tiny on cpu<br>tiny +lr=0.01 on cpu" in table and "✗ beats chance" in table


def test_params_counts_a_preset_with_typed_overrides(kb_root, capsys):
    assert main(["--root", str(kb_root), "params", "a", "--set", "width=4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == 4 * 4 + 4 and out["overrides"] == {"width": 4}  # Linear(4, 4)
