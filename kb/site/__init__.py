"""The study site: the knowledge base → Markdown under ``site_src/`` → mkdocs → ``site/``.

In reading order: ``markdown`` (text from records made safe for Markdown, node URLs),
``diagram`` (per-page lineage SVG), ``explorer`` (the whole graph as JSON), ``pages`` (every
page's template and context), ``render`` (Jinja), ``vendor`` (third-party JS/CSS from npm at
build time), ``build`` (load → render → mkdocs, written aside and swapped in) and ``serve``.
The site uses the knowledge base, never the reverse.
"""
