"""``kb new ID``: a record (and optionally a runnable) from the templates in ``kb/templates``."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined

from ..errors import KBError
from .loader import PLACEHOLDER_YEAR
from .schema import ID_RE

MODELINE = "# yaml-language-server: $schema=../kb/paper.schema.json\n"


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("kb", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_stub(data: dict) -> str:
    """A record file for plain data (used by ``kb bib import``)."""
    return MODELINE + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def new(
    root: Path,
    paper_id: str,
    title: str = "TODO title",
    year: int | None = None,
    runnable: bool = False,
) -> list[Path]:
    """Write ``papers/<id>.yaml`` (and ``runnable/<id>.py``); refuse to overwrite.

    What the author must still write is marked ``TODO`` (the year, when not given, is
    ``PLACEHOLDER_YEAR`` with a ``# TODO`` comment): ``kb validate`` warns of each and
    ``kb validate --strict`` / ``kb build`` refuse the record until they are gone.
    """
    if not re.fullmatch(ID_RE, paper_id):
        raise KBError(f"id {paper_id!r} must match {ID_RE} (lowercase letters, digits, '-')")
    targets = [root / "papers" / f"{paper_id}.yaml"] + (
        [root / "runnable" / f"{paper_id}.py"] if runnable else []
    )
    for t in targets:
        if t.exists():
            raise KBError(f"{t.relative_to(root)} exists; kb new never overwrites")
    env = _env()
    block = (
        (
            "\n  id: " + paper_id + '\n  gate: {metric: accuracy, op: ">=", value: 0.9}\n'
            "  params_figure: null"
        )
        if runnable
        else "null"
    )
    texts = [
        env.get_template("paper.yaml.j2").render(
            id=paper_id,
            title=title.replace('"', "'"),
            authors="TODO Author",
            venue="TODO",
            year=PLACEHOLDER_YEAR if year is None else year,
            year_placeholder=year is None,
            key=paper_id.replace("-", ""),
            runnable=block,
        )
    ]
    if runnable:
        texts.append(env.get_template("runnable.py.j2").render(id=paper_id, title=title))
    for t, text in zip(targets, texts):
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text(text, encoding="utf-8")
    return targets
