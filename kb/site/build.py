"""The build, as one linear function of named stages (after mkdocs' ``build()``):

load → render → write ``site_src/`` (only files whose bytes changed) → mkdocs build
into a fresh folder beside the site → vendor the browser libraries into it
(:mod:`kb.site.vendor`) → normalise what mkdocs stamps with the date → swap it in.

Everything is read and rendered before anything is written, and the site is built
aside and swapped, so a failed build leaves the previous site untouched.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import KBError
from ..knowledge.base import KnowledgeBase, load
from ..knowledge.glossary import PATH as GLOSSARY
from . import vendor

#: Under site_src/, what write_tree leaves alone: the templates, and the vendored libraries
#: ``kb serve`` copies there (git-ignored, like the rest of the generated tree).
KEEP = ("templates/", "assets/vendor/")
VENDOR = "assets/vendor"


def write_pages(docs: Path, pages: dict[str, str | bytes]) -> list[str]:
    """Write each of ``pages`` under ``docs`` whose bytes differ; return the paths written.

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
    return changed


def write_tree(docs: Path, pages: dict[str, str | bytes]) -> list[str]:
    """Make ``docs`` hold exactly ``pages`` (plus what :data:`KEEP` names); return the paths changed."""
    changed = write_pages(docs, pages)
    for path in sorted(docs.rglob("*"), reverse=True):
        rel = path.relative_to(docs).as_posix()
        if (rel + "/").startswith(KEEP) or rel in pages:
            continue
        if path.is_file():
            path.unlink()
            changed.append(rel)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return changed


def render_all(base: KnowledgeBase, only: set[str] | None = None) -> dict[str, str | bytes]:
    """Every page; with ``only``, just the pages of those records."""
    from .render import render

    return render(base, only)


def config_overrides(root: Path) -> dict:
    """What ``mkdocs.yml`` cannot say statically: a Glossary nav entry when the glossary exists."""
    if not (root / GLOSSARY).is_file():
        return {}
    from mkdocs.utils.yaml import yaml_load

    with open(root / "mkdocs.yml", encoding="utf-8") as f:
        nav = (yaml_load(f) or {}).get("nav")
    if not nav:
        return {}
    titles = [next(iter(e)) if isinstance(e, dict) else e for e in nav]
    at = titles.index("Bibliography") if "Bibliography" in titles else len(nav)
    return {"nav": [*nav[:at], {"Glossary": "glossary.md"}, *nav[at:]]}


def mkdocs_build(root: Path, out: Path) -> None:
    """``mkdocs build --strict`` of ``root/mkdocs.yml`` into ``out`` (which must not exist)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    try:
        cfg = load_config(
            str(root / "mkdocs.yml"), site_dir=str(out), strict=True, **config_overrides(root)
        )
        build(cfg)
    except (Abort, ConfigurationError) as e:
        raise KBError(f"mkdocs build failed: {e}") from None


def normalise(site: Path) -> None:
    """Make the output depend on the input only (mkdocs stamps sitemap.xml.gz with the build
    day), and keep the search's word breaks out of what a reader sees: jieba splits Chinese with
    U+200B for the index, which search results show as titles and a reader copies. A page's
    title's words stay in its text, hidden, so titles stay findable."""
    index = site / "search" / "search_index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        for doc in data.get("docs", []):
            if "\u200b" in doc["title"]:  # keep its words findable: a hidden copy in the text
                doc["text"] += f"<p hidden>{html.escape(doc['title'])}</p>"
                doc["title"] = doc["title"].replace("\u200b", "")
        index.write_text(
            json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
        )
    gz = site / "sitemap.xml.gz"
    if gz.is_file():
        data = gzip.decompress(gz.read_bytes())
        with (
            open(gz, "wb") as f,
            gzip.GzipFile(filename="sitemap.xml", mode="wb", fileobj=f, mtime=0) as z,
        ):
            z.write(data)


def build(
    root: str | Path | None = None, out: str | Path | None = None, strict: bool = True
) -> Path:
    """Build the whole site; return the folder it is in."""
    base = load(root, strict=strict)  # load + validate + graph + check
    pages = render_all(base)  # render (in memory)
    write_tree(base.root / "site_src", pages)  # write the Markdown tree
    final = Path(out).resolve() if out else base.root / "site"
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=final.parent))
    try:
        shutil.rmtree(staging)
        mkdocs_build(base.root, staging)  # build aside
        vendor.vendor(base.root, staging / VENDOR)  # cytoscape, KaTeX from npm
        normalise(staging)
        old = final.with_name(final.name + ".old")
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)  # swap in
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
