"""The mkdocs hook ``kb serve`` adds (never ``kb build``): keep compiled templates between rebuilds.

mkdocs makes a new Jinja environment for every rebuild, so Material's templates were parsed
and compiled again each time: a third of a rebuild at 2,000 papers (BENCHMARKS.md). mkdocs
loads this file afresh with each configuration; the cache lives in :mod:`kb.site.serve`, which
stays imported. Jinja checks each template's source checksum, so an edited template is
compiled again.
"""

from __future__ import annotations

import kb.site.serve as _serve


def on_env(env, config, files):
    env.bytecode_cache = _serve.TEMPLATES
    return env
