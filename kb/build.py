"""The build, as one linear function of named stages (after mkdocs' ``build()``):

load → render → write ``site_src/`` (only files whose bytes changed) → mkdocs build
into a fresh folder beside the site → swap it in.

Everything is read and rendered before anything is written, and the site is built
aside and swapped, so a failed build leaves the previous site untouched.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import KBError
from .knowledge import KnowledgeBase, load

#: Folders and files under site_src/ that are ours to write (everything else is left alone).
GENERATED_MARK = ".generated"


def write_tree(docs: Path, pages: dict[str, str | bytes]) -> list[str]:
    """Make ``docs`` hold exactly ``pages`` (plus ``templates/``); return the paths changed.

    A file is rewritten only when its bytes differ, so a watching ``mkdocs serve``
    rebuilds only what changed and never loops.
    """
    changed = []
    for rel, body in sorted(pages.items()):
        data = body.encode("utf-8") if isinstance(body, str) else body
        target = docs / rel
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        changed.append(rel)
    for path in sorted(docs.rglob("*"), reverse=True):
        rel = path.relative_to(docs).as_posix()
        if rel.split("/")[0] == "templates" or rel in pages:
            continue
        if path.is_file():
            path.unlink()
            changed.append(rel)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return changed


def render_all(base: KnowledgeBase) -> dict[str, str | bytes]:
    from .site import render

    return render(base)


def mkdocs_build(root: Path, out: Path) -> None:
    """``mkdocs build --strict`` of ``root/mkdocs.yml`` into ``out`` (which must not exist)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    try:
        cfg = load_config(str(root / "mkdocs.yml"), site_dir=str(out), strict=True)
        build(cfg)
    except (Abort, ConfigurationError) as e:
        raise KBError(f"mkdocs build failed: {e}") from None


def build(root: str | Path | None = None, out: str | Path | None = None, strict: bool = True) -> Path:
    """Build the whole site; return the folder it is in."""
    base = load(root, strict=strict)                               # load + validate + graph + check
    pages = render_all(base)                                       # render (in memory)
    write_tree(base.root / "site_src", pages)                      # write the Markdown tree
    final = Path(out).resolve() if out else base.root / "site"
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=final.parent))
    try:
        shutil.rmtree(staging)
        mkdocs_build(base.root, staging)                           # build aside
        old = final.with_name(final.name + ".old")
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)                                 # swap in
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
