"""The glossary, ``kb/data/glossary.yaml`` under the project root: the terms used across
records, with their Traditional Chinese form, a definition in both languages and the
paper that introduced them.

The file is a list of ``{en, zh-Hant, definition: {en, zh-Hant}, paper}``. It is
optional: :func:`load_glossary` returns ``None`` when it is absent, and the site then
has no glossary page.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from .errors import KBError
from .schema import Bilingual, Slug, Strict, Text

PATH = Path("kb") / "data" / "glossary.yaml"


class Term(Strict):
    en: Text
    zh_hant: Text = Field(alias="zh-Hant")
    definition: Bilingual | None = None
    paper: Slug | None = Field(None, description="The paper that introduced or named the term.")


def load_glossary(root: str | Path) -> list[Term] | None:
    """The glossary's terms sorted by English term (case-insensitive), or ``None`` without a file."""
    path = Path(root) / PATH
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as e:
        raise KBError(f"{PATH}: not valid YAML: {e}") from None
    if isinstance(raw, dict):
        raw = raw.get("terms", [])
    if not isinstance(raw, list):
        raise KBError(f"{PATH}: expected a list of terms")
    terms = []
    for i, item in enumerate(raw):
        try:
            terms.append(Term.model_validate(item))
        except ValidationError as e:
            where = ".".join(str(x) for x in e.errors()[0]["loc"])
            raise KBError(f"{PATH}: term [{i}]{' › ' + where if where else ''}: {e.errors()[0]['msg']}") from None
    return sorted(terms, key=lambda t: (t.en.casefold(), t.en))
