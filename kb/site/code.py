"""The lines of a runnable that implement an equation, read with :mod:`ast` at build time.

A course page shows each key equation beside the function or class of ``runnable/<id>.py``
that computes it (``teaching.code`` in the record). The lines come from the file as it is
now, so the page follows the code; a symbol that is gone stops the build with the record's
field named. Nothing here imports a runnable.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from ..errors import KBError, did_you_mean


@dataclass(frozen=True)
class Excerpt:
    runnable: str  # the runnable's id (file runnable/<id>.py)
    symbol: str  # function, class or Class.method
    start: int  # first line (1-based, decorators included)
    end: int  # last line
    text: str  # those lines, dedented to the symbol's own indent


def _symbols(tree: ast.Module) -> dict[str, ast.AST]:
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = node
            if isinstance(node, ast.ClassDef):
                for inner in node.body:
                    if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        found[f"{node.name}.{inner.name}"] = inner
    return found


def excerpt(root: Path, runnable: str, symbol: str, where: str = "") -> Excerpt:
    """The lines of ``symbol`` in ``runnable/<runnable>.py``.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()); (root / "runnable").mkdir()
    >>> _ = (root / "runnable" / "toy.py").write_text(
    ...     "import torch\\n\\nclass A:\\n    def f(self, x):\\n        return x * 2\\n")
    >>> e = excerpt(root, "toy", "A.f")
    >>> (e.start, e.end, e.text)
    (4, 5, 'def f(self, x):\\n    return x * 2')
    >>> excerpt(root, "toy", "A.g", "papers/toy.yaml › teaching.code[0].symbol")
    Traceback (most recent call last):
    ...
    kb.errors.KBError: papers/toy.yaml › teaching.code[0].symbol: runnable/toy.py has no function or class 'A.g' (did you mean 'A.f'?)
    """
    path = root / "runnable" / f"{runnable}.py"
    prefix = f"{where}: " if where else ""
    if not path.is_file():
        raise KBError(f"{prefix}no file runnable/{runnable}.py")
    source = path.read_text(encoding="utf-8")
    found = _symbols(ast.parse(source, filename=str(path)))
    node = found.get(symbol)
    if node is None:
        hint = did_you_mean(symbol, found)
        raise KBError(f"{prefix}runnable/{runnable}.py has no function or class {symbol!r}{hint}")
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    lines = source.splitlines()[start - 1 : node.end_lineno]
    indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
    return Excerpt(runnable, symbol, start, node.end_lineno, "\n".join(x[indent:] for x in lines))


_SVG_NS = "{http://www.w3.org/2000/svg}"
_UNSAFE_TAGS = {"script", "foreignObject", "iframe", "object", "embed", "image", "use"}


def inline_svg(path: Path, alt_en: str, alt_zh: str, where: str = "") -> str:
    """An SVG figure from ``papers/figures/`` ready to sit inline in a page: checked to be
    well-formed and inert (no script, event handler, outside reference or embedded document),
    its alt text in both languages as ``<title>``/``<desc>``, no blank lines (which would end
    Markdown's raw HTML block)."""
    prefix = f"{where}: " if where else ""
    if not path.is_file():
        raise KBError(f"{prefix}no file papers/figures/{path.name}")
    text = path.read_text(encoding="utf-8")
    try:
        svg = ElementTree.fromstring(text)
    except ElementTree.ParseError as e:
        raise KBError(f"{prefix}papers/figures/{path.name} is not well-formed SVG: {e}") from None
    if svg.tag != f"{_SVG_NS}svg":
        raise KBError(
            f"{prefix}papers/figures/{path.name}: the root element must be <svg> "
            "in the SVG namespace"
        )
    for el in svg.iter():
        tag = el.tag.removeprefix(_SVG_NS)
        bad = [
            a
            for a in el.attrib
            if a.lower().startswith("on")
            or (a.endswith("href") and not el.attrib[a].startswith("#"))
        ]
        if tag in _UNSAFE_TAGS or bad:
            raise KBError(
                f"{prefix}papers/figures/{path.name}: <{tag}> {' '.join(bad)} is not "
                "allowed in a figure (no scripts, handlers or outside references)"
            )
    body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", text)
    body = re.sub(r"<(title|desc)\b[^>]*>.*?</\1>", "", body, flags=re.S)
    esc = lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # noqa: E731
    head = re.match(r"<svg\b[^>]*>", body).group(0)
    opened = head[:-1] + ' role="img" aria-label="' + esc(alt_en).replace('"', "&quot;") + '">'
    body = body.replace(
        head, f'{opened}<title>{esc(alt_en)}</title><desc lang="zh-Hant">{esc(alt_zh)}</desc>', 1
    )
    return "\n".join(line for line in body.splitlines() if line.strip())
