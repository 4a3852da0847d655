"""The benchmark's own parts: the synthetic KB is a valid, buildable project shaped like papers/,
and a timed child reports its CPU time (the runnables' figure is built from it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import run  # noqa: E402
import synth  # noqa: E402


def test_synthetic_kb_loads_strictly_with_a_sparse_lineage_dag(tmp_path):
    import kb
    from kb.knowledge import lineage

    base = kb.load(synth.generate(120, tmp_path / "p"), strict=True)
    assert len(base.records) == 120
    edges = sum(len(p.lineage) for p in base.papers.values())
    assert 1.5 <= edges / 120 <= 3.5  # ~2.4 per paper, like the real KB
    assert lineage.plan(base.graph, "p000119")  # later papers have something to read first
    assert all(p.summary.overview.zh_hant for p in base.papers.values())


def test_synthetic_kb_is_the_same_for_the_same_seed(tmp_path):
    a = synth.generate(20, tmp_path / "a")
    b = synth.generate(20, tmp_path / "b")
    assert [f.read_bytes() for f in sorted((a / "papers").iterdir())] == [
        f.read_bytes() for f in sorted((b / "papers").iterdir())
    ]


def test_child_reports_seconds_memory_and_cpu_and_fails_loudly():
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    seconds, rss, cpu = run.Child([sys.executable, "-c", spin]).wait()
    assert cpu >= 0.3 and seconds >= cpu * 0.5 and rss > 1
    child = run.Child(
        [sys.executable, "-c", "import sys; sys.stderr.write('x' * 200000); sys.exit(3)"]
    )
    with pytest.raises(SystemExit, match="failed \\(3\\)"):  # a 200 kB log does not block it
        child.wait()


def test_naive_config_puts_every_paper_in_the_nav(tmp_path):
    import yaml

    from kb.site.serve import refresh

    project = synth.generate(15, tmp_path / "p")
    refresh(project)
    nav = yaml.safe_load(run.naive_config(project).read_text(encoding="utf-8"))["nav"]
    listed = next(e["All papers"] for e in nav if isinstance(e, dict) and "All papers" in e)
    assert len(listed) == 15


def test_runnables_stage_keeps_a_core_for_the_naive_build_until_it_ends(monkeypatch):
    import threading
    import time

    from kb import runnables as rn

    live, most, seen = [0], {"with_naive": 0, "after": 0}, []
    lock = threading.Lock()
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.2: pass"
    naive = run.Child([sys.executable, "-c", spin])  # busy: its 1.2 CPU s must not be counted

    def fake_run(base, paper_id, *args, **kwargs):
        with lock:
            live[0] += 1
            phase = "with_naive" if naive.result is None else "after"
            most[phase] = max(most[phase], live[0])
        time.sleep(0.2)
        with lock:
            live[0] -= 1
        seen.append(paper_id)
        return {"paper": paper_id, "passed": paper_id != "bert"}

    monkeypatch.setattr(rn, "run", fake_run)
    got = run.runnables(naive)
    assert most == {"with_naive": 1, "after": 2}
    assert got["runnables_count"] == len(seen) > 50 and got["runnables_passed"] == len(seen) - 1
    assert naive.result is not None and naive.result[2] >= 1.2
    # The fakes only sleep: the stage's own CPU is ~0, and never negative (whole microseconds).
    assert 0 <= got["runnables_cpu_s"] < 1.0


def test_cpu_seconds_are_differences_of_whole_microseconds():
    from types import SimpleNamespace as U

    a, b = U(ru_utime=0.3, ru_stime=0.0), U(ru_utime=0.1, ru_stime=0.2)  # the same 0.3 CPU s
    assert (a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) < 0  # as floats: below zero
    assert run.cpu_us(a) - run.cpu_us(b) == 0  # as microseconds: zero
    assert run.cpu_us(U(ru_utime=1.000001, ru_stime=0.0)) == 1_000_001


def test_busy_core_stage_takes_turns_between_idle_runs_and_runs_beside_a_spinning_core():
    events, alive = [], [False]

    class Spinner:
        def terminate(self):
            alive[0] = False
            events.append("stop")

        def wait(self, timeout=None):
            return 0

    def spin():
        alive[0] = True
        events.append("spin")
        return Spinner()

    def time_run(paper_id):
        events.append(("busy" if alive[0] else "idle", paper_id))
        return (
            (30.0 if alive[0] else 20.0) + len(events),
            (1 if alive[0] else 2),
            (12.0 if alive[0] else 10.0),
        )

    got = run.busy_core(time_run, spin, "lenet", repeats=2)
    assert events == [("idle", "lenet"), "spin", ("busy", "lenet"), "stop"] * 2  # taking turns
    assert got["busy_core_idle_s"] == 21.0 and got["busy_core_busy_s"] == 33.0  # best of each
    assert got["busy_core_ratio"] == 33.0 / 21.0 and got["busy_core_cpu_ratio"] == 1.2
    assert (got["busy_core_threads_idle"], got["busy_core_threads_busy"]) == (2, 1)
    assert run.BUDGETS["busy_core_ratio"] == ("<=", 1.5)


def test_busy_core_stage_stops_the_spinner_when_a_run_fails():
    stopped = []

    class Spinner:
        def terminate(self):
            stopped.append(True)

        def wait(self, timeout=None):
            return 0

    calls = []

    def time_run(paper_id):
        calls.append(paper_id)
        if len(calls) == 2:  # the run beside the spinner
            raise SystemExit("kb run lenet failed (2)")
        return 10.0, 2, 9.0

    with pytest.raises(SystemExit):
        run.busy_core(time_run, Spinner, "lenet", repeats=1)
    assert stopped == [True]  # never left spinning
