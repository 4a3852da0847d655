"""Text from records made safe for Markdown (:func:`md`, :func:`attr`, :func:`fence`,
:func:`front_title`) and the relative URL of a node's page (:func:`node_url`).

Text from records is treated as Markdown with raw HTML escaped and only http(s) or relative
link targets kept (see :func:`md`).
"""

from __future__ import annotations

import html
import json
import re

_LINK = re.compile(r"\]\(((?:[^()\n]|\([^()\n]*\))*)\)")  # one level of (nested) parentheses
_SAFE_TARGET = re.compile(
    r"<?(https?://[^\s<>()]+(\([^\s()]*\))?|#[\w-]+|(\.{1,2}/)*[\w./-]+\.(md|bib)(#[\w-]+)?)>?"
    r'(\s+"[^"\n]*")?'
)


# Spans where a brace is literal and must stay one: inline code, then inline math as
# pymdownx.arithmatex finds it (its patterns, kept on one line so a span never crosses a block).
_CODE = re.compile(r"(?<!\\)(`+)[^\n]+?(?<!`)\1(?!`)")
_MATH = re.compile(
    r"(?<!\\)\$(?!\s)(?:\\.|[^\\$\n])+?(?<!\s)\$|(?<!\\)\\\((?:\\[^)\n]|[^\\\n])+?\\\)"
    r"|\$\$(?:\\.|[^\\])+?\$\$|\\\[(?:\\[^\]]|[^\\])+?\\\]|\\begin\{([a-z]+\*?)\}(?:\\.|[^\\])+?\\end\{\1\}"
)
# attr_list syntax ({: onclick=…}, {href=…}) that sets an attribute a script could run from.
_ATTR = re.compile(
    r"\{(?=[^{}\n]*?(?<![\w\\-])(?:on\w+|href|src|srcdoc|formaction|action|style|xlink:href)\s*=)",
    re.I,
)
_REF_DEF = re.compile(r"^([ \t]*)\[(?=[^\]\n]+\]:)", re.M)  # [id]: target (a reference definition)
# Display math: arithmatex renders $$…$$ only as a block of its own (a paragraph alone).
_DISPLAY = re.compile(r"(?<!\\)\$\$(?:\\.|[^\\$])+?\$\$")


def _display_blocks(text: str) -> str:
    r"""Every ``$$…$$`` becomes a paragraph of its own: blank lines around it, at the indent of
    the line it starts on; punctuation right after the closing ``$$`` moves inside it.

    >>> print(_display_blocks("Sum:\n$$a + b$$.\nThen c."))
    Sum:
    <BLANKLINE>
    $$a + b.$$
    <BLANKLINE>
    Then c.
    >>> _display_blocks("x $a$ and $$b$$ inline")
    'x $a$ and\n\n$$b$$\n\ninline'
    >>> _display_blocks("  $$\n  a \\\\\n  b\n  $$\n\n  next")
    '  $$\n  a \\\\\n  b\n  $$\n\n  next'
    """
    out, last = [], 0
    for m in _DISPLAY.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        indent = re.match(r"[ \t]*", text[line_start:]).group(0)
        before = text[last : m.start()]
        if before.strip():  # text before it, on its line or the line above: split it off
            before = before.rstrip(" \t")
            before = (before if before.endswith("\n\n") else before.rstrip("\n") + "\n\n") + indent
        math, end = m.group(0), m.end()
        if end < len(text) and text[end] in ".,;:":
            math, end = f"{math[:-2]}{text[end]}$$", end + 1
        out += [before, math]
        last = end
        rest = text[last:]
        gap = len(rest) - len(rest.lstrip(" \t\n"))
        if rest[gap:] and "\n\n" not in rest[:gap]:
            out.append("\n\n" + indent)
            last += gap
    return "".join(out) + text[last:]


def _braces(text: str) -> str:
    """``{`` outside code and math becomes ``&#123;``, so attr_list (``{: onclick=…}``) never
    sees record text; inside, only a brace that opens an attribute list is neutralised."""
    out, last = [], 0
    for m in _CODE.finditer(text):
        out += [_braces_outside_code(text[last : m.start()]), _ATTR.sub("&#123;", m.group(0))]
        last = m.end()
    return "".join(out) + _braces_outside_code(text[last:])


def _math(span: str) -> str:
    r"""A math span of escaped text as KaTeX must see it: arithmatex escapes it again, so
    ``&lt;``/``&gt;`` become TeX's ``\lt``/``\gt`` (no ``<`` ever reaches the HTML) and
    ``&amp;`` (the alignment mark of ``aligned``) is ``&`` again.

    >>> _math("$i &lt; 512 &amp; x$")
    '$i \\lt  512 & x$'
    """
    span = span.replace("&lt;", "\\lt ").replace("&gt;", "\\gt ").replace("&amp;", "&")
    return _ATTR.sub("&#123;", span)


def _braces_outside_code(text: str) -> str:
    out, last = [], 0
    for m in _MATH.finditer(text):
        out += [text[last : m.start()].replace("{", "&#123;"), _math(m.group(0))]
        last = m.end()
    return "".join(out) + text[last:].replace("{", "&#123;")


def md(text: str | None) -> str:
    r"""Record text as safe Markdown: raw HTML shown as text; brackets that are not a link to
    an http(s) address, an anchor or a page (``[12](Network in Network)``, ``[x](javascript:…)``)
    stay text; images become links (nothing loads from elsewhere); reference definitions and
    attribute lists (``{: onclick=…}``) stay text. Math (``$…$``) and code keep their braces.

    >>> print(md('<script>alert(1)</script> [x](javascript:alert(1)) [y](https://a.b) [MASK](80%)'))
    &lt;script&gt;alert(1)&lt;/script&gt; [x&#93;(javascript:alert(1)) [y](https://a.b) [MASK&#93;(80%)
    >>> print(md('# T {: onclick="alert(1)"} $a_{ij}$ `{x}` ![i](https://a.b/i.png)'))
    # T &#123;: onclick="alert(1)"} $a_{ij}$ `{x}` &#33;[i](https://a.b/i.png)
    """
    if not text:
        return ""
    if "$$" in text:
        text = _display_blocks(text)
    text = html.escape(text, quote=False)
    # Neutralised with entities, not backslashes: a backslash in the text could escape ours.
    text = _LINK.sub(
        lambda m: (
            m.group(0) if _SAFE_TARGET.fullmatch(m.group(1).strip()) else "&#93;" + m.group(0)[1:]
        ),
        text,
    )
    text = text.replace("![", "&#33;[")
    text = _REF_DEF.sub(r"\1&#91;", text)
    return _braces(text)


def fence(text: str, lang: str = "") -> str:
    """A fenced code block around ``text`` whose fence no line of ``text`` can close.

    >>> print(fence("a\\n```\\nb", "bibtex"))
    ````bibtex
    a
    ```
    b
    ````
    """
    longest = max((len(m) for m in re.findall(r"`{3,}|~{3,}", text)), default=2)
    mark = "`" * max(3, longest + 1)
    return f"{mark}{lang}\n{text}\n{mark}"


def attr(text: str | None) -> str:
    """Text for an HTML attribute or a Markdown link title."""
    return html.escape(text or "", quote=True)


_NOT_YAML = re.compile("[\x7f-\x84\x86-\x9f\ufffe\uffff]")


def front_title(text: str | None) -> str:
    """A page title for the front matter (``title: …``), as one quoted YAML scalar.

    Material prints ``page.meta.title`` into ``<title>`` and the header as it is, so it is
    HTML-escaped here; without it Material takes the h1's text and unescapes it
    (``striptags``), which turns a title's ``&lt;/title&gt;`` back into markup.

    >>> print(front_title('A "</title><script>x</script>'))
    "A &quot;&lt;/title&gt;&lt;script&gt;x&lt;/script&gt;"
    """
    quoted = json.dumps(html.escape(" ".join((text or "").split())), ensure_ascii=False)
    return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


def node_url(node: str, from_page: str) -> str:
    """Relative link from a page (``papers/bert.md``) to a node's page."""
    target = f"papers/{node}.md" if "/" not in node else f"concepts/{node}.md"
    depth = from_page.count("/")
    return "../" * depth + target


_ID_CODE = re.compile(r"(?<![\[\w`])`([a-z0-9][a-z0-9-]*(?:/[a-z0-9][a-z0-9-]*)?)`(?![\]\w`])")


def link_ids(text: str, known: set[str] | frozenset[str], from_page: str) -> str:
    """Inline code that is exactly a paper or concept id (```elmo```, ```word2vec/cbow```) becomes a
    link to that node's page; other code, fenced blocks and links are left alone.

    >>> print(link_ids("Unlike `elmo` and `x`, see [`gpt`](a.md).", {"elmo", "gpt"}, "papers/bert.md"))
    Unlike [`elmo`](../papers/elmo.md) and `x`, see [`gpt`](a.md).
    """
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and "`" in line:
            line = _ID_CODE.sub(
                lambda m: (
                    f"[{m.group(0)}]({node_url(m.group(1), from_page)})"
                    if m.group(1) in known
                    else m.group(0)
                ),
                line,
            )
        out.append(line)
    return "\n".join(out)
