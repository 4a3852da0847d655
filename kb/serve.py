"""``kb serve``: render, then run ``mkdocs serve`` while re-rendering edited records.

A background thread polls ``papers/`` and ``runnable/``; when a file changes it loads
the knowledge base again and rewrites only the pages whose bytes changed, which
mkdocs' own watcher then rebuilds (``--dirty``-style). A record with errors is
reported and the last good pages stay. The vendored libraries are copied once into
``site_src/assets/vendor/`` (generated and git-ignored; :func:`kb.build.write_tree`
leaves it alone), since ``mkdocs serve`` builds into a folder of its own.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from . import vendor
from .build import VENDOR, config_overrides, render_all, write_tree
from .errors import KBError
from .knowledge import load


def _stamp(root: Path) -> tuple:
    files = [*(root / "papers").glob("*.yaml"), *(root / "runnable").glob("*.py"),
             *(root / "results").glob("*.json"), *(root / "site_src" / "templates").glob("*")]
    return tuple(sorted((str(f), f.stat().st_mtime_ns) for f in files if f.is_file()))


def refresh(root: Path) -> list[str]:
    """Re-render ``site_src/``; return the pages that changed."""
    base = load(root)
    return write_tree(root / "site_src", render_all(base))


def watch(root: Path, interval: float = 0.3, stop: threading.Event | None = None) -> None:
    last = _stamp(root)
    while not (stop and stop.is_set()):
        time.sleep(interval)
        now = _stamp(root)
        if now == last:
            continue
        last = now
        try:
            changed = refresh(root)
            print(f"kb: re-rendered {len(changed)} page(s)", file=sys.stderr)
        except KBError as e:
            print(f"kb: records have problems; keeping the last good pages\n{e}", file=sys.stderr)


def serve(root: Path, address: str = "127.0.0.1:8000") -> None:
    from mkdocs.commands.serve import serve as mkdocs_serve

    refresh(root)
    vendor.vendor(root, root / "site_src" / VENDOR)  # kept by write_tree; git-ignored
    threading.Thread(target=watch, args=(root,), daemon=True).start()
    mkdocs_serve(str(root / "mkdocs.yml"), dev_addr=address, livereload=True, build_type="dirty",
                 **config_overrides(root))
