"""``kb serve``: render, then run ``mkdocs serve`` while re-rendering edited records.

A background thread polls ``papers/`` and ``runnable/``; when a file changes it loads
the knowledge base again and rewrites only the pages whose bytes changed, which
mkdocs' own watcher then rebuilds (``--dirty``-style). When only records changed, their
own pages are rendered and written first, so the page being edited updates at once; the
rest of the site (neighbours' lineage lists, the index pages) follows from a separate
process. Rendering all 6,000 pages of a 2,000-paper site takes seconds of pure Python,
and in this process it would hold the interpreter lock that mkdocs' rebuild of the edited
page needs (measured: 8.3 s instead of ~4 s from save to served page). A record with
errors is reported and the last good pages stay. The vendored libraries are copied once into
``site_src/assets/vendor/`` (generated and git-ignored; :func:`kb.site.build.write_tree`
leaves it alone), since ``mkdocs serve`` builds into a folder of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from jinja2 import BytecodeCache

from ..errors import KBError
from ..knowledge.base import load
from . import vendor
from .build import VENDOR, config_overrides, render_all, write_pages, write_tree


class _CompiledTemplates(BytecodeCache):
    """Jinja bytecode kept in memory for the life of ``kb serve`` (see :mod:`kb.site.serve_hook`)."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.store[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = _CompiledTemplates()


def _stamp(root: Path) -> dict[str, int]:
    files = [
        *(root / "papers").glob("*.yaml"),
        *(root / "runnable").glob("*.py"),
        *(root / "results").glob("*.json"),
        *(root / "site_src" / "templates").glob("*"),
    ]
    return {f.relative_to(root).as_posix(): f.stat().st_mtime_ns for f in files if f.is_file()}


def edited_records(before: dict[str, int], after: dict[str, int]) -> set[str] | None:
    """The ids of the records that changed, or None when anything else did (or one was removed)."""
    changed = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
    if not all(f.startswith("papers/") and f in after for f in changed):
        return None
    return {f[len("papers/") : -len(".yaml")] for f in changed}


def refresh(root: Path, edited: set[str] | None = None) -> list[str]:
    """Re-render ``site_src/`` (with ``edited``, only those records' pages); return the pages that changed."""
    base = load(root)
    docs = root / "site_src"
    return (
        write_pages(docs, render_all(base, only=edited))
        if edited
        else write_tree(docs, render_all(base))
    )


def refresh_elsewhere(root: Path) -> tuple[int, str]:
    """:func:`refresh` of the whole site in a child process; return its exit status and stderr."""
    code = "import sys; from pathlib import Path; from kb.site.serve import refresh; print(len(refresh(Path(sys.argv[1]))))"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env
    )
    return proc.returncode, proc.stderr.strip()


def watch(root: Path, interval: float = 0.3, stop: threading.Event | None = None) -> None:
    last = _stamp(root)
    while not (stop and stop.is_set()):
        time.sleep(interval)
        now = _stamp(root)
        if now == last:
            continue
        edited, last = edited_records(last, now), now
        try:
            changed = refresh(root, edited)
            print(f"kb: re-rendered {len(changed)} page(s)", file=sys.stderr)
        except KBError as e:
            print(f"kb: records have problems; keeping the last good pages\n{e}", file=sys.stderr)
            continue
        if edited:
            status, err = refresh_elsewhere(root)
            if status != 0:
                print(f"kb: re-rendering the rest of the site failed\n{err}", file=sys.stderr)


def serve(root: Path, address: str = "127.0.0.1:8000") -> None:
    from mkdocs.commands.serve import serve as mkdocs_serve

    refresh(root)
    vendor.vendor(root, root / "site_src" / VENDOR)  # kept by write_tree; git-ignored
    threading.Thread(target=watch, args=(root,), daemon=True).start()
    mkdocs_serve(
        str(root / "mkdocs.yml"),
        dev_addr=address,
        livereload=True,
        build_type="dirty",
        hooks=[str(Path(__file__).with_name("serve_hook.py"))],
        **config_overrides(root),
    )
