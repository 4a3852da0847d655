"""Benchmarks: load, queries, build, rebuild, memory and the runnables, measured in one run.

    python benchmarks/run.py --quick     # ≤ 10 minutes: everything but the 1k/10k build growth
    python benchmarks/run.py             # also build_1k_s and build_10k_s
    python benchmarks/run.py --skip build,load,queries,rebuild,runnables,growth   # one stage: busy

Prints a table, then one JSON line with every figure and whether it met its budget. Times are
wall-clock seconds on this machine; where the machine is noisy the budget is a ratio measured
side by side (build vs naive mkdocs). Exit status 1 when a budget is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BUDGETS = {  # figure: (op, limit)
    "load_validate_10k_s": ("<=", 3.0),
    "query_ancestors_ms": ("<=", 50.0),
    "query_path_ms": ("<=", 50.0),
    "query_plan_ms": ("<=", 200.0),
    "build_ratio_2k": ("<=", 0.2),
    "build_growth_10x": ("<=", 12.0),
    "rebuild_one_s": ("<=", 2.0),
    "rebuild_one_2k_s": ("<=", 5.0),
    "runnables_cpu_s": ("<=", 900.0),
    "course_tiny_max_s": ("<=", 90.0),
    "busy_core_ratio": ("<=", 1.5),
}
BUSY_RUNNABLE = "lenet"  # a course runnable of ~10-20 s, timed idle and beside one busy core
QUICK_BUDGET_S = 600.0  # --quick itself, all stages: ten minutes


class Child:
    """A child process timed from its start; :meth:`wait` gives (seconds, peak RSS MB, CPU s).

    Its stderr goes to a file, not a pipe: nobody reads a pipe until the process ends, and a
    build that logs more than the pipe holds would block forever. ``os.wait4`` reaps it, so
    the CPU figure includes the children it waited for.
    """

    def __init__(self, cmd: list[str], cwd: Path | None = None, env: dict | None = None):
        self.cmd, self.log, self.result = cmd, tempfile.TemporaryFile(), None
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def poll(self) -> tuple | None:
        if self.result is None:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self._done(status, usage)
        return self.result

    def wait(self) -> tuple:
        if self.result is None:
            _, status, usage = os.wait4(self.proc.pid, 0)
            self._done(status, usage)
        return self.result

    def _done(self, status: int, usage) -> None:
        seconds = time.perf_counter() - self.start
        self.proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            self.log.seek(0)
            err = self.log.read().decode(errors="replace")
            raise SystemExit(f"failed ({code}): {' '.join(self.cmd)}\n{err[-3000:]}")
        self.log.close()
        self.result = (seconds, usage.ru_maxrss / 1024, cpu_us(usage) / 1e6)


def cpu_us(usage) -> int:
    """User + system CPU of an rusage reading in whole microseconds.

    The kernel counts in microseconds (``timeval``); Python hands them over as floats, and a
    difference of two float sums can come out a hair below zero. Integers cannot.
    """
    return round(usage.ru_utime * 1e6) + round(usage.ru_stime * 1e6)


def timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """Run ``cmd`` to the end; return (seconds, peak RSS of that process in MB). Fails loudly."""
    seconds, rss, _ = Child(cmd, cwd, env).wait()
    return seconds, rss


def load_validate(tmp: Path) -> dict:
    project = synth.generate(10_000, tmp / "kb10k")
    code = (
        "import sys, time, kb; t = time.perf_counter(); kb.load(sys.argv[1], strict=True); "
        "print(time.perf_counter() - t)"
    )
    run = lambda env: float(
        subprocess.run(
            [PY, "-c", code, str(project)],
            capture_output=True,
            text=True,  # noqa: E731
            check=True,
            env={**os.environ, **env},
        ).stdout
    )
    cold = run({"KB_NO_CACHE": "1"})
    run({})  # fills .cache/kb from the same files
    warm = min(run({}) for _ in range(3))
    return {"load_validate_10k_cold_s": cold, "load_validate_10k_s": warm}


def queries(n_nodes: int = 100_000, samples: int = 60) -> dict:
    sys.path.insert(0, str(ROOT))
    from kb.errors import NoPath
    from kb.knowledge import lineage
    from kb.knowledge.schema import Paper

    papers, nodes = [], 0
    for rec in synth.records(n_nodes):  # stop once the graph has n_nodes (papers + concepts)
        papers.append(Paper.model_validate(rec))
        nodes += 1 + len(rec["concepts"])
        if nodes >= n_nodes:
            break
    G = lineage.build_graph(papers)
    rng = random.Random(1)
    targets = rng.sample([p.id for p in papers[len(papers) // 2 :]], samples)
    out = {"query_graph_nodes": G.number_of_nodes(), "query_graph_edges": G.number_of_edges()}

    def p50(fn) -> float:
        times = []
        for t in targets:
            start = time.perf_counter()
            fn(t)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    sizes = [len(lineage.ancestors(G, t)) for t in targets]
    out["query_ancestors_median_size"] = statistics.median(sizes)
    out["query_ancestors_ms"] = p50(lambda t: lineage.ancestors(G, t))
    sources = {t: rng.choice(lineage.ancestors(G, t) or [t]) for t in targets}

    def one_path(t):
        try:
            lineage.path(G, sources[t], t)
        except NoPath:
            pass

    out["query_path_ms"] = p50(one_path)
    out["query_plan_ms"] = p50(lambda t: lineage.plan(G, t))
    return out


def naive_config(project: Path) -> Path:
    """The same pages built the obvious way: mkdocs-material with every paper in the nav."""
    cfg = yaml.safe_load((project / "mkdocs.yml").read_text(encoding="utf-8"))
    papers = sorted(
        p.stem for p in (project / "site_src" / "papers").glob("*.md") if p.stem != "index"
    )
    cfg["nav"] = [*cfg["nav"], {"All papers": [{p: f"papers/{p}.md"} for p in papers]}]
    cfg["site_dir"] = str(project / "site-naive")
    path = project / "mkdocs-naive.yml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def render_only(project: Path) -> None:
    """Write the project's ``site_src/`` (kb's render stage alone), untimed."""
    timed(
        [
            PY,
            "-c",
            "import sys; from pathlib import Path; from kb.site.serve import refresh; refresh(Path(sys.argv[1]))",
            str(project),
        ]
    )


def build(project: Path) -> dict:
    """``kb build`` of ``project``, timed."""
    n = len(list((project / "papers").glob("*.yaml")))
    env = {"KB_VENDOR_CACHE": str(ROOT / ".cache" / "npm")}
    seconds, rss = timed([PY, "-m", "kb.cli", "--root", str(project), "build"], env=env)
    return {f"build_{n // 1000}k_s": seconds, f"peak_rss_{n // 1000}k_mb": rss}


def start_naive(project: Path) -> Child:
    return Child([PY, "-m", "mkdocs", "build", "-q", "-f", str(naive_config(project))])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rebuild_one(project: Path, paper_id: str) -> float:
    """Seconds from saving an edited record to its new text being served by ``kb serve``."""
    port = _free_port()
    env = {**os.environ, "KB_VENDOR_CACHE": str(ROOT / ".cache" / "npm")}
    server = subprocess.Popen(
        [PY, "-m", "kb.cli", "--root", str(project), "serve", "--address", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/papers/{paper_id}.html"

    def page() -> str:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            return ""

    try:
        deadline = time.time() + 600
        while "<html" not in page():
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("kb serve did not come up")
            time.sleep(0.5)
        time.sleep(2)  # let the first build and the watchers settle
        record = project / "papers" / f"{paper_id}.yaml"
        data = yaml.safe_load(record.read_text(encoding="utf-8"))
        marker = f"BENCHMARKMARKER{int(time.time())}"
        data["summary"]["overview"]["en"] = f"{marker} {data['summary']['overview']['en']}"
        edited = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
        start = time.perf_counter()
        record.write_text(edited, encoding="utf-8")
        while marker not in page():
            if time.perf_counter() - start > 120:
                raise SystemExit("the edit never reached the served page")
            time.sleep(0.05)
        return time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=30)


def copy_real_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("mkdocs.yml", "package.json", "package-lock.json"):
        shutil.copyfile(ROOT / name, dest / name)
    for folder in ("papers", "runnable", "results", "site_src/templates"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, dest / folder)
    (dest / "kb" / "data").mkdir(parents=True)
    shutil.copyfile(ROOT / "kb" / "data" / "glossary.yaml", dest / "kb" / "data" / "glossary.yaml")
    return dest


def runnables(naive: Child | None = None) -> dict:
    """Every record's runnable, tiny preset, one torch thread each, judged by its gate (``kb run``).

    Two at a time on the two cores, but only one while ``naive`` still runs, so that build
    keeps a core to itself. ``runnables_cpu_s`` is the CPU time of all of them (the budget);
    ``runnables_s`` the wall time of the stage.
    """
    import resource
    import threading

    sys.path.insert(0, str(ROOT))
    from kb import load
    from kb import runnables as rn
    from kb.errors import KBError

    base = load(ROOT)
    todo = sorted(i for i, p in base.papers.items() if p.runnable)
    results: list[dict] = []
    running = [0]
    cv = threading.Condition()
    naive_done_before = naive is None or naive.poll() is not None

    def worker() -> None:
        while True:
            with cv:
                while todo and running[0] >= (
                    1 if naive is not None and naive.poll() is None else 2
                ):
                    cv.wait(timeout=0.5)
                if not todo:
                    return
                paper_id = todo.pop(0)
                running[0] += 1
            try:
                r = rn.run(base, paper_id, "tiny", "cpu", 600)
            except KBError as e:
                r = {"paper": paper_id, "passed": False, "error": str(e)}
            with cv:
                running[0] -= 1
                results.append(r)
                cv.notify_all()

    threads_was = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if threads_was is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = threads_was
    cpu_of_stage = cpu_us(after) - cpu_us(before)
    if naive is not None and not naive_done_before:
        cpu_of_stage -= round(naive.wait()[2] * 1e6)  # the naive build was reaped here: not ours
    cpu = max(0, cpu_of_stage) / 1e6  # whole microseconds: never below zero
    failed = sorted(r["paper"] for r in results if not r["passed"])
    if failed:
        print(f"runnables that did not pass: {', '.join(failed)}", file=sys.stderr)
    course = {i for i, p in base.papers.items() if p.curriculum and p.runnable}
    # A course paper's tiny run, idea and ablation together (one thread here: conservative).
    slowest = max((r.get("seconds", 0.0) for r in results if r["paper"] in course), default=0.0)
    return {
        "runnables_cpu_s": cpu,
        "runnables_s": seconds,
        "runnables_passed": len(results) - len(failed),
        "runnables_count": len(results),
        "course_tiny_max_s": slowest,
    }


def kb_run_seconds(paper_id: str) -> tuple[float, int | None, float]:
    """Wall seconds of ``kb run ID`` as a user types it (threads and wait policy are kb's choice:
    no OMP_* variable of ours reaches it), the torch threads it chose, and the CPU seconds of
    kb and the runnable's process together."""
    import resource

    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [PY, "-m", "kb.cli", "--root", str(ROOT), "run", paper_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    cpu = (cpu_us(resource.getrusage(resource.RUSAGE_CHILDREN)) - cpu_us(before)) / 1e6
    if proc.returncode not in (0, 1):  # 1 is a failed gate: still a timed run
        raise SystemExit(f"kb run {paper_id} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, json.loads(proc.stdout).get("threads"), cpu


def spin_one_core() -> subprocess.Popen:
    """Another process spinning on one core (the last one) until it is terminated."""
    core = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    return subprocess.Popen([PY, "-c", "while True: pass"], preexec_fn=pin)


def busy_core(
    time_run=kb_run_seconds, spin=spin_one_core, paper_id: str = BUSY_RUNNABLE, repeats: int = 2
) -> dict:
    """``kb run`` idle, then beside a process spinning on one core: ``busy_core_ratio`` is the
    busy time over the idle time. Threads that spin while they wait, or more threads than free
    cores, made it 2.7x. Idle and busy runs take turns, so a change in the machine's other load
    weighs on both, and the best of ``repeats`` each counts (a stray hiccup doesn't)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    idle, busy = [], []
    for _ in range(repeats):
        idle.append(time_run(paper_id))
        spinner = spin()
        try:
            time.sleep(0.5)  # let it take its core
            busy.append(time_run(paper_id))
        finally:
            spinner.terminate()
            spinner.wait(timeout=30)
    idle_s, busy_s = min(r[0] for r in idle), min(r[0] for r in busy)
    # CPU seconds do not grow with other processes' load, only with threads that spin while
    # they wait: on a shared machine, where "idle" is not idle, this ratio still tells.
    idle_cpu, busy_cpu = min(r[2] for r in idle), min(r[2] for r in busy)
    out = {
        "busy_core_idle_s": idle_s,
        "busy_core_busy_s": busy_s,
        "busy_core_ratio": busy_s / idle_s,
        "busy_core_cpu_ratio": busy_cpu / idle_cpu if idle_cpu else None,
        "busy_core_threads_idle": idle[0][1],
        "busy_core_threads_busy": busy[0][1],
        "busy_core_load_before": load,
    }
    return {k: v for k, v in out.items() if v is not None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="skip the 1k/10k build growth (≤ 10 minutes)"
    )
    ap.add_argument(
        "--skip",
        default="",
        help="comma-separated stages to skip: build,load,queries,rebuild,runnables,busy,growth",
    )
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    figures: dict = {}

    def report(name: str, got: dict, seconds: float) -> None:
        figures.update(got)
        shown = ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in got.items()
        )
        print(f"[{name}: {seconds:.1f} s] {shown}", file=sys.stderr, flush=True)

    def stage(name: str, fn) -> None:
        start = time.perf_counter()
        report(name, fn(), time.perf_counter() - start)

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as t:
        tmp = Path(t)
        naive = None
        if "build" not in skip:
            # kb build and the naive mkdocs build of the same 2,000 papers run side by side, one
            # per core; the other stages follow on kb build's core while the naive build goes on.
            project = synth.generate(2000, tmp / "kb2000")
            render_only(project)
            naive = start_naive(project)
            stage("build 2k (beside naive)", lambda: build(project))
        if "load" not in skip:
            stage("load", lambda: load_validate(tmp))
        if "queries" not in skip:
            stage("queries", queries)
        if "rebuild" not in skip:
            stage(
                "rebuild real",
                lambda: {"rebuild_one_s": rebuild_one(copy_real_project(tmp / "real"), "bert")},
            )

            def rebuild_2k() -> dict:
                copy = tmp / "kb2000-serve"
                if (tmp / "kb2000").is_dir():  # a copy: the naive build may still be reading kb2000
                    shutil.copytree(
                        tmp / "kb2000", copy, ignore=shutil.ignore_patterns("site", "site-naive")
                    )
                else:
                    synth.generate(2000, copy)
                return {"rebuild_one_2k_s": rebuild_one(copy, "p001000")}

            stage("rebuild 2k", rebuild_2k)
        if "runnables" not in skip:
            stage("runnables", lambda: runnables(naive))
        if naive is not None:
            start = time.perf_counter()
            seconds, _, _ = naive.wait()
            report(
                "naive 2k (beside the rest)", {"naive_2k_s": seconds}, time.perf_counter() - start
            )
        if "busy" not in skip:  # after the naive build: "idle" means idle
            stage("busy core", busy_core)
        if "growth" not in skip and not args.quick:  # alone, after everything else
            for n in (1000, 10_000):
                stage(f"build {n // 1000}k", lambda n=n: build(synth.generate(n, tmp / f"kb{n}")))
    figures["benchmark_s"] = time.perf_counter() - began
    if "build_2k_s" in figures and "naive_2k_s" in figures:
        figures["build_ratio_2k"] = figures["build_2k_s"] / figures["naive_2k_s"]
        figures["peak_rss_mb"] = figures["peak_rss_2k_mb"]
    if "build_1k_s" in figures and "build_10k_s" in figures:
        figures["build_growth_10x"] = figures["build_10k_s"] / figures["build_1k_s"]
    met = {
        k: (figures[k] <= lim if op == "<=" else figures[k] >= lim)
        for k, (op, lim) in BUDGETS.items()
        if k in figures
    }
    if args.quick and not skip:
        met["benchmark_s"] = figures["benchmark_s"] <= QUICK_BUDGET_S
    if "runnables_count" in figures:
        met["runnables_passed"] = figures["runnables_passed"] == figures["runnables_count"]
    limits = {
        **BUDGETS,
        "benchmark_s": ("<=", QUICK_BUDGET_S),
        "runnables_passed": ("==", figures.get("runnables_count")),
    }
    print(f"{'figure':<30} {'value':>12}  budget")
    for k, v in figures.items():
        budget = (
            f"{limits[k][0]} {limits[k][1]:g}  {'ok' if met[k] else 'MISSED'}" if k in met else ""
        )
        print(
            f"{k:<30} {v:>12.3f}  {budget}"
            if isinstance(v, float)
            else f"{k:<30} {v:>12}  {budget}"
        )
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }
    print(
        json.dumps(
            {
                "figures": {
                    k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()
                },
                "met": met,
                "quick": args.quick,
                "machine": machine,
            },
            sort_keys=True,
        )
    )
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
