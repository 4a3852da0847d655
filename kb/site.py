"""Records → Markdown pages for mkdocs-material, with Jinja templates from
``site_src/templates/``.

:func:`render` is pure: the same knowledge base gives the same pages, byte for byte
(sorted iteration, no timestamps). Text from records is treated as Markdown with raw
HTML escaped and only http(s) or relative link targets kept (see :func:`md`).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import lineage as lin
from .knowledge import KnowledgeBase

_LINK = re.compile(r"\]\(((?:[^()\n]|\([^()\n]*\))*)\)")  # one level of (nested) parentheses
_SAFE_TARGET = re.compile(r'<?(https?://[^\s<>()]+(\([^\s()]*\))?|#[\w-]+|(\.{1,2}/)*[\w./-]+\.(md|bib)(#[\w-]+)?)>?'
                          r'(\s+"[^"\n]*")?')


def md(text: str | None) -> str:
    r"""Record text as safe Markdown: raw HTML shown as text; brackets that are not a link to
    an http(s) address, an anchor or a page (``[12](Network in Network)``, ``[x](javascript:…)``)
    stay text.

    >>> print(md('<script>alert(1)</script> [x](javascript:alert(1)) [y](https://a.b) [MASK](80%)'))
    &lt;script&gt;alert(1)&lt;/script&gt; [x\](javascript:alert(1)) [y](https://a.b) [MASK\](80%)
    """
    if not text:
        return ""
    text = html.escape(text, quote=False)
    return _LINK.sub(lambda m: m.group(0) if _SAFE_TARGET.fullmatch(m.group(1).strip()) else "\\" + m.group(0), text)


def attr(text: str | None) -> str:
    """Text for an HTML attribute or a Markdown link title."""
    return html.escape(text or "", quote=True)


def node_url(node: str, from_page: str) -> str:
    """Relative link from a page (``papers/bert.md``) to a node's page."""
    target = f"papers/{node}.md" if "/" not in node else f"concepts/{node}.md"
    depth = from_page.count("/")
    return "../" * depth + target


def environment(root: Path) -> Environment:
    env = Environment(loader=FileSystemLoader(str(root / "site_src" / "templates")), undefined=StrictUndefined,
                      autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(md=md, attr=attr, tojson_sorted=lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True))
    return env


def render(base: KnowledgeBase) -> dict[str, str | bytes]:
    """Every generated page, keyed by its path under ``site_src/``."""
    from .pages import context_for_pages

    env = environment(base.root)
    pages: dict[str, str | bytes] = {}
    for rel, template, ctx in context_for_pages(base):
        if template is None:  # a file shipped as is (the .bib)
            pages[rel] = ctx["text"]
            continue
        pages[rel] = env.get_template(template).render(page=rel, url=lambda n, _p=rel: node_url(n, _p), **ctx)
    return pages


__all__ = ["render", "md", "attr", "node_url", "lin"]
