"""Records → Markdown pages for mkdocs-material, with Jinja templates from
``site_src/templates/``.

:func:`render` is pure: the same knowledge base gives the same pages, byte for byte
(sorted iteration, no timestamps). Every text field goes through the filters of
:mod:`kb.site.markdown`.
"""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context

from ..knowledge.base import KnowledgeBase
from .markdown import attr, fence, front_title, link_ids, md, node_url
from .pages import context_for_pages


def environment(root: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(root / "site_src" / "templates")),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        md=md_linked,
        attr=attr,
        fence=fence,
        front_title=front_title,
        tojson_sorted=lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True),
    )
    env.globals["known_ids"] = frozenset()
    return env


@pass_context
def md_linked(ctx, text: str | None) -> str:
    """:func:`~kb.site.markdown.md`, then paper and concept ids in backticks link to their pages."""
    return link_ids(md(text), ctx.get("known_ids", frozenset()), ctx.get("page", ""))


def render(base: KnowledgeBase, only: set[str] | None = None) -> dict[str, str | bytes]:
    """Every generated page, keyed by its path under ``site_src/``; with ``only``, those records' pages."""
    env = environment(base.root)
    env.globals["known_ids"] = frozenset(base.graph.nodes)
    pages: dict[str, str | bytes] = {}
    for rel, template, ctx in context_for_pages(base, only):
        if template is None:  # a file shipped as is (the .bib)
            pages[rel] = ctx["text"]
            continue
        pages[rel] = env.get_template(template).render(
            page=rel, url=lambda n, _p=rel: node_url(n, _p), **ctx
        )
    return pages


__all__ = ["render", "environment"]
