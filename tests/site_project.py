"""A small project to build the site from: tests/data/mini plus tests/data/site, with the
real mkdocs.yml, templates and npm pins. Shared by test_site, test_build and the browser tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def make_project(dest: Path, glossary: bool = True) -> Path:
    """Lay out a buildable project in ``dest`` and return it."""
    # One npm install for every test project (and the real one): kb.site.vendor caches there.
    os.environ.setdefault("KB_VENDOR_CACHE", str(ROOT / ".cache" / "npm"))
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("mkdocs.yml", "package.json", "package-lock.json"):
        shutil.copyfile(ROOT / name, dest / name)
    shutil.copytree(ROOT / "site_src" / "templates", dest / "site_src" / "templates")
    for folder in ("papers", "runnable", "results"):
        (dest / folder).mkdir(exist_ok=True)
    for src in (
        DATA / "mini" / "papers",
        DATA / "site" / "papers",
        DATA / "site" / "runnable",
        DATA / "site" / "results",
    ):
        for f in sorted(src.iterdir()):
            if f.is_dir():  # papers/figures/
                shutil.copytree(f, dest / src.name / f.name, dirs_exist_ok=True)
            else:
                shutil.copyfile(f, dest / src.name / f.name)
    if glossary:
        (dest / "kb" / "data").mkdir(parents=True)
        shutil.copyfile(DATA / "site" / "glossary.yaml", dest / "kb" / "data" / "glossary.yaml")
    return dest


def make_xss_project(dest: Path) -> Path:
    """A buildable project whose records (tests/data/xss) carry XSS payloads in every text field."""
    os.environ.setdefault("KB_VENDOR_CACHE", str(ROOT / ".cache" / "npm"))
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("mkdocs.yml", "package.json", "package-lock.json"):
        shutil.copyfile(ROOT / name, dest / name)
    shutil.copytree(ROOT / "site_src" / "templates", dest / "site_src" / "templates")
    for folder in ("papers", "runnable"):
        shutil.copytree(DATA / "xss" / folder, dest / folder)
    return dest
