"""The ``kb`` command: a thin layer over the library.

Our own errors print as a clean message and exit 1; anything else prints
"unexpected error" with its traceback and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from .errors import KBError, ValidationFailed
from .knowledge import lineage as lin
from .knowledge.base import KnowledgeBase, find_root, load


def _emit(args, data, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)


def _kb(args) -> KnowledgeBase:
    base = load(args.root, strict=getattr(args, "strict", False))
    for w in base.warnings:
        print(w, file=sys.stderr)
    return base


def cmd_validate(args) -> int:
    base = _kb(args)
    print(
        f"OK: {len(base.records)} records, {base.graph.number_of_nodes()} nodes, "
        f"{base.graph.number_of_edges()} edges"
        + (f", {len(base.warnings)} warnings" if base.warnings else "")
    )
    return 0


def cmd_schema(args) -> int:
    from .knowledge.schema import json_schema

    print(json.dumps(json_schema(), ensure_ascii=False, indent=2))
    return 0


def cmd_show(args) -> int:
    base = _kb(args)
    paper = base.paper(args.id)
    data = paper.model_dump(mode="json", by_alias=True, exclude_none=True)
    _emit(args, data, json.dumps(data, ensure_ascii=False, indent=2) if not args.json else "")
    return 0


def cmd_lineage(args) -> int:
    G = _kb(args).graph
    direction = "down" if args.down else "up"
    nodes = lin.related(G, args.id, direction, args.depth)
    keep = set(nodes) | {args.id} | set(lin.concepts_of(G, args.id))
    edges = [
        {"from": u, "to": v, "type": d["type"]}
        for u, v, d in sorted(G.subgraph(keep).edges(data=True))
    ]
    word = "led to" if args.down else "came from"
    # each listed node is the subject of its edges: a source is extended, a builder extends
    end, reading = ("to", "builder") if args.down else ("from", "source")
    lines = [f"{args.id} {word}:"]
    for n in nodes:
        lines.append(f"  {n}")
        lines += [
            f"    {lin.edge_sentence(e, lang, reading)}"
            for e in edges
            if e[end] == n and e["type"] != "part-of"
            for lang in lin.LANGS
        ]
    _emit(
        args,
        {"node": args.id, "direction": direction, "nodes": nodes, "edges": edges},
        "\n".join(lines) if nodes else f"{args.id}: nothing {word}",
    )
    return 0


def _chain_text(steps: list[dict]) -> list[str]:
    """A chain's steps, each as a sentence with the builder as subject and then its reason."""
    return [
        f"  {lin.edge_sentence(s, lang)}{sep}{s['why'][lang]}"
        for s in steps
        for lang, sep in (("en", ": "), ("zh-Hant", "："))
    ]


def cmd_path(args) -> int:
    G = _kb(args).graph
    chains = [
        {"nodes": nodes, "steps": lin.steps(G, nodes)}
        for nodes in lin.paths(G, args.a, args.b, args.k)
    ]
    lines = []
    for i, c in enumerate(chains, 1):
        head = " → ".join(c["nodes"])
        if args.k > 1:
            head = f"{i}. {head} ({len(c['steps'])} step{'s' if len(c['steps']) != 1 else ''})"
        lines += ([""] if i > 1 else []) + [head] + _chain_text(c["steps"])
    if args.k > 1 and len(chains) < args.k:
        lines.append(
            f"(only {len(chains)} chain{'s' if len(chains) != 1 else ''} from {args.a} to {args.b})"
        )
    # `nodes` and `steps` are the shortest chain, as before --k; `paths` has every chain found
    _emit(args, {**chains[0], "paths": chains}, "\n".join(lines))
    return 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return n


def cmd_plan(args) -> int:
    base = _kb(args)
    order = lin.plan(base.graph, args.id)
    text = "\n".join(
        f"{i:2}. {p:<22} {base.paper(p).year}  {base.paper(p).title}"
        for i, p in enumerate(order, 1)
    )
    _emit(args, {"target": args.id, "order": order}, text)
    return 0


def cmd_graph(args) -> int:
    from .knowledge.export import export_graph

    out = export_graph(_kb(args).graph, args.format)
    if args.output:
        Path(args.output).write_text(out, encoding="utf-8")
    else:
        sys.stdout.write(out)
    return 0


def cmd_bib_export(args) -> int:
    from .bib import export

    text = export(list(_kb(args).papers.values()))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_bib_import(args) -> int:
    from .bib import existing_records, import_bib

    root = Path(args.root or find_root())
    into = Path(args.into) if args.into else root / "papers"
    report = import_bib(
        Path(args.file),
        into,
        existing_records(root / "papers", into),
        dry_run=args.dry_run,
        merge=args.merge,
    )
    data = report.as_json()
    if report.errors:
        for e in report.errors:
            where = f" › {e['field']}" if e["field"] else ""
            print(
                f"{args.file}:{e['line']}: entry {e['key']!r}{where}: {e['reason']}",
                file=sys.stderr,
            )
        n = len(report.errors)
        print(
            f"Aborted: {n} error{'s' if n != 1 else ''} in {data['entries']} entr{'ies' if data['entries'] != 1 else 'y'}; nothing written.",
            file=sys.stderr,
        )
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        return 1
    would = args.dry_run
    lines = [
        f"{data['entries']} entries: {data['imported']} {'to import' if would else 'imported'} into {into}, "
        f"{len(data['matched'])} matched, {len(data['renamed'])} renamed, {len(data['skipped'])} skipped"
        + (
            f", {len(data['merged'])} record{'s' if len(data['merged']) != 1 else ''} "
            f"{'to fill' if would else 'filled'}"
            if args.merge
            else ""
        )
    ]
    for m in data["matched"]:
        whose = f"entry {m['duplicate_of']!r}" if "duplicate_of" in m else m["id"]
        filled = f"; fills {', '.join(m['filled'])}" if m.get("filled") else ""
        lines.append(f"  {args.file}:{m['line']}: {m['key']}: same {m['by']} as {whose}{filled}")
    lines += [
        f"  {args.file}:{r['line']}: {r['key']}: imported as {r['id']} ({r['reason']})"
        for r in data["renamed"]
    ]
    lines += [f"  {args.file}:{s['line']}: {s['key']}: {s['reason']}" for s in data["skipped"]]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_new(args) -> int:
    from .knowledge.scaffold import new

    for path in new(Path(args.root or find_root()), args.id, args.title, args.year, args.runnable):
        print(f"wrote {path}")
    return 0


def cmd_params(args) -> int:
    from .runnables import params

    data = params(_kb(args), args.id, args.preset, args.override)
    stated = f" (paper states {data['stated']:,.0f})" if data["stated"] else ""
    _emit(args, data, f"{args.id} [{args.preset}]: {data['params']:,} parameters{stated}")
    return 0


def cmd_run(args) -> int:
    from . import runnables

    base = _kb(args)
    ids = sorted(i for i, p in base.papers.items() if p.runnable) if args.all else [args.id]
    if not ids or ids == [None]:
        raise KBError("name a paper, or --all")
    # Every --set is typed and checked against each runnable's Config before any child starts.
    overrides = {i: runnables.overrides_for(base, i, args.override) for i in ids}
    jobs = max(1, args.jobs if args.all else 1)
    env = runnables.child_env(jobs)  # threads and wait policy, once for all children

    def one(paper_id: str) -> dict:
        try:
            r = runnables.run(
                base, paper_id, args.preset, args.device, args.timeout, overrides[paper_id], env
            )
            if args.record:
                runnables.record(base.root, r)
        except KBError as e:
            if not args.all:
                raise
            r = {
                "paper": paper_id,
                "preset": args.preset,
                "device": args.device,
                "passed": False,
                "error": str(e),
            }
        return r

    def report(r: dict) -> None:
        done[r["paper"]] = r
        if not args.json:
            text = runnables.summary_line(r) if "error" not in r else f"ERROR {r['error']}"
            print(f"{r['paper']:<20} {text}", flush=True)

    done: dict[str, dict] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:  # each runnable is its own process; threads only wait
        pending = {}
        for n, paper_id in enumerate(ids, 1):
            if args.all and not args.json:
                print(f"[{n}/{len(ids)}] {paper_id} …", file=sys.stderr, flush=True)
            pending[pool.submit(one, paper_id)] = paper_id
            if len(pending) >= jobs:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    del pending[f]
                    report(f.result())
        for f in pending:
            report(f.result())
    results = [done[i] for i in ids]
    failed = [r["paper"] for r in results if not r["passed"]]
    if args.json:
        summary = {
            "passed": len(ids) - len(failed),
            "failed": failed,
            "results": results,
            "seconds": round(sum(r.get("seconds", 0) for r in results), 2),
            "wall_seconds": round(time.perf_counter() - start, 2),
            "jobs": jobs,
        }
        print(json.dumps(summary if args.all else results[0], ensure_ascii=False, indent=2))
    elif args.all:
        print(
            f"{len(ids) - len(failed)} passed, {len(failed)} failed"
            + (f": {', '.join(failed)}" if failed else "")
        )
    return 1 if failed else 0


def cmd_build(args) -> int:
    from .site.build import build

    out = build(args.root, args.out, strict=True)
    print(f"built {out}")
    return 0


def cmd_serve(args) -> int:
    from .site.serve import serve

    serve(Path(args.root or find_root()), args.address)
    return 0


def _more_commands(sub, add) -> None:
    sp = add(
        "build", cmd_build, "render the records and build the static site (strict)", json_flag=False
    )
    sp.add_argument("--out", help="output folder (default: site/)")
    sp = add(
        "serve",
        cmd_serve,
        "build and serve the site locally, re-rendering edited records",
        json_flag=False,
    )
    sp.add_argument("--address", default="127.0.0.1:8000")
    sp = sub.add_parser("bib", help="BibTeX export and import")
    bsub = sp.add_subparsers(dest="bib_command", required=True)
    e = bsub.add_parser("export", help="write one BibTeX entry per record")
    e.set_defaults(func=cmd_bib_export)
    e.add_argument("-o", "--output")
    i = bsub.add_parser(
        "import",
        help="stub records from a .bib file; entries already in the knowledge base are matched",
    )
    i.set_defaults(func=cmd_bib_import)
    i.add_argument("file")
    i.add_argument("--into", help="folder for the new records (default: papers/)")
    i.add_argument("--dry-run", action="store_true")
    i.add_argument(
        "--merge",
        action="store_true",
        help="fill the fields a matched record lacks (never overwrites; keeps the file's layout)",
    )
    i.add_argument("--json", action="store_true")
    sp = add(
        "new", cmd_new, "scaffold a record (and a runnable) from the template", json_flag=False
    )
    sp.add_argument("id")
    sp.add_argument("--title", default="TODO title")
    sp.add_argument(
        "--year", type=int, default=None, help="default: a placeholder to fill in (TODO)"
    )
    sp.add_argument("--runnable", action="store_true", help="also write runnable/<id>.py")
    sp = add(
        "params", cmd_params, "parameter count of a runnable's preset (meta device, no training)"
    )
    sp.add_argument("id")
    sp.add_argument("--preset", default="paper")
    sp.add_argument(
        "--set",
        dest="override",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a Config field (typed by its default: true, 3, 0.01, 1,2)",
    )
    sp = add("run", cmd_run, "train a runnable in its own process and check its gate")
    sp.add_argument("id", nargs="?")
    sp.add_argument(
        "--all", action="store_true", help="every record's runnable, each in its own process"
    )
    sp.add_argument("--preset", default="tiny", choices=["tiny", "paper", "gpu"])
    sp.add_argument("--device", default="cpu")
    sp.add_argument("--timeout", type=float, default=600, help="seconds per runnable")
    sp.add_argument(
        "--jobs", type=int, default=1, help="with --all: runnables at once, each in its own process"
    )
    sp.add_argument("--record", action="store_true", help="write results/<id>.json with provenance")
    sp.add_argument(
        "--set",
        dest="override",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a Config field (typed by its default: true, 3, 0.01, 1,2); "
        "the run is recorded under its own key, never as the plain preset's",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kb", description="Classic deep-learning papers and their lineage."
    )
    p.add_argument(
        "--root", type=Path, help="project folder (default: nearest folder up with mkdocs.yml)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, func, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="machine-readable output")
        return sp

    sp = add("validate", cmd_validate, "check every record and the lineage graph", json_flag=False)
    sp.add_argument("--strict", action="store_true", help="treat warnings as errors")
    add("schema", cmd_schema, "print the record's JSON Schema", json_flag=False)
    add("show", cmd_show, "print one validated record").add_argument("id")
    sp = add("lineage", cmd_lineage, "where an idea came from (--up) or what it led to (--down)")
    sp.add_argument("id")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--up", action="store_true", default=True)
    g.add_argument("--down", action="store_true")
    sp.add_argument("--depth", type=int, default=None)
    sp = add(
        "path", cmd_path, "the chain of reasons from A to B (--k N: up to N chains, shortest first)"
    )
    sp.add_argument("a")
    sp.add_argument("b")
    sp.add_argument(
        "--k", type=_positive, default=1, metavar="N", help="list up to N chains (default 1)"
    )
    add("plan", cmd_plan, "what to read before a paper, in order").add_argument("id")
    sp = add("graph", cmd_graph, "export the lineage graph", json_flag=False)
    sp.add_argument("--format", choices=["graphml", "json", "dot", "mermaid"], default="json")
    sp.add_argument("-o", "--output")
    _more_commands(sub, add)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationFailed as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(e, file=sys.stderr)
        return 1
    except KBError as e:
        print(f"kb: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except Exception:  # noqa: BLE001 - the one place we catch everything
        print("kb: unexpected error (please report it):", file=sys.stderr)
        traceback.print_exc()
        return 2


if __name__ == "__main__":
    sys.exit(main())
