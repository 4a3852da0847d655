"""BibTeX in and out, with bibtexparser 2.

``export`` writes one entry per record; ``import_entries`` turns a ``.bib`` into stub
records. bibtexparser keeps blocks it could not parse in ``failed_blocks`` and says
nothing; here every one of them is reported with its line.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import bibtexparser
import bibtexparser.middlewares as mw
from bibtexparser.model import Entry, Field

from .errors import KBError, did_you_mean
from .knowledge.schema import ID_RE, Paper

ENTRY_TYPES = {"article", "book", "booklet", "conference", "inbook", "incollection", "inproceedings",
               "manual", "mastersthesis", "misc", "online", "phdthesis", "proceedings", "techreport",
               "unpublished"}
VENUE_FIELDS = ("venue", "journal", "booktitle", "publisher", "school", "institution")
#: Fields that come from the record itself; a record's bibtex.fields may not hold them.
FACT_FIELDS = {"title", "author", "year", "doi", "url", "venue", "kbid", "eprint", "archiveprefix"}
ARXIV_RE = re.compile(r"(?:arxiv[:\s]*|abs/)(\d{4}\.\d{4,5})", re.I)

logging.getLogger("bibtexparser").setLevel(logging.ERROR)


def slugify(key: str) -> str:
    """A record id from a BibTeX key.

    >>> slugify("Abadi.Barham.Chen.ea.2016")
    'abadi-barham-chen-ea-2016'
    >>> slugify("Müller:2019_Attention")
    'muller-2019-attention'
    """
    text = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].rstrip("-") or "entry"


def _authors(value: str) -> tuple[list[str], bool]:
    """``"Last, First and others"`` → (["First Last"], complete=False)."""
    names, complete = [], True
    for raw in re.split(r"\s+and\s+", " ".join(value.split())):
        raw = raw.strip()
        if raw.lower() in {"others", "et al.", "et al"}:
            complete = False
        elif raw:
            last, sep, first = raw.partition(",")
            names.append(f"{first.strip()} {last.strip()}".strip() if sep else raw)
    return names, complete


def _author_field(p: Paper) -> str:
    """Names as written ("Laurens van der Maaten"): BibTeX finds the von part itself."""
    return " and ".join(list(p.authors) + ([] if p.authors_complete else ["others"]))


# ---------------------------------------------------------------- export

def to_entry(p: Paper) -> Entry:
    """The BibTeX entry of a record: facts from the record, the rest from ``bibtex.fields``."""
    fields = dict(p.bibtex.fields) if p.bibtex else {}
    fields.update(title=p.title, author=_author_field(p), year=str(p.year))
    if p.doi:
        fields["doi"] = p.doi
    if p.url:
        fields["url"] = p.url
    if p.arxiv:
        fields.update(eprint=p.arxiv, archivePrefix="arXiv")
    if p.venue and _venue(fields) != p.venue:
        fields["venue"] = p.venue
    fields["kbid"] = p.id
    kind = p.bibtex.type if p.bibtex else ("misc" if p.arxiv else "article")
    key = p.bibtex.key if p.bibtex else p.id
    return Entry(kind, key, [Field(k, v) for k, v in sorted(fields.items())])


def export(papers: list[Paper]) -> str:
    """All records as one ``.bib`` text, sorted by key."""
    keys: dict[str, str] = {}
    lib = bibtexparser.Library()
    for p in sorted(papers, key=lambda p: (p.bibtex.key if p.bibtex else p.id)):
        entry = to_entry(p)
        if entry.key in keys:
            raise KBError(f"papers/{p.id}.yaml and papers/{keys[entry.key]}.yaml share the BibTeX key {entry.key!r}")
        keys[entry.key] = p.id
        lib.add(entry)
    return bibtexparser.write_string(lib)


# ---------------------------------------------------------------- import

@dataclass
class ImportReport:
    """What an import found. ``errors`` make the file unusable as it is: when there are any,
    nothing is written. ``skipped`` are entries whose record already exists (a re-import)."""

    entries: int = 0
    imported: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"entries": self.entries, "imported": len(self.imported), "ids": self.imported,
                "skipped": self.skipped, "errors": self.errors}


def _venue(fields: dict) -> str | None:
    return next((fields[k] for k in VENUE_FIELDS if fields.get(k)), None)


def to_record(entry: Entry) -> dict:
    """A stub record (plain data, validated by the caller) from one BibTeX entry."""
    raw = {k: " ".join(str(v.value).split()) for k, v in entry.fields_dict.items()}
    f = {k.lower(): v for k, v in raw.items()}
    authors, complete = _authors(f.get("author") or f.get("editor") or "")
    year = re.search(r"\d{4}", f.get("year", ""))
    arxiv = (f.get("eprint") if re.fullmatch(r"\d{4}\.\d{4,5}", f.get("eprint", "")) else None) \
        or next((m.group(1) for k in ("journal", "url", "note") if (m := ARXIV_RE.search(f.get(k, "")))), None)
    rec = {
        "id": f.get("kbid") or slugify(entry.key),
        "title": f.get("title", ""),
        "authors": authors,
        "authors_complete": complete,
        "year": int(year.group()) if year else None,
        "venue": _venue(f),
        "arxiv": arxiv,
        "doi": f.get("doi") or None,
        "url": f.get("url") or None,
        "bibtex": {"type": entry.entry_type.lower(), "key": entry.key,
                   "fields": {k: v for k, v in sorted(raw.items()) if k.lower() not in FACT_FIELDS}},
    }
    return {k: v for k, v in rec.items() if v is not None}


class _DecodeLatexWhereMarked(mw.LatexDecodingMiddleware):
    """Decode LaTeX only in values that hold LaTeX markup (a backslash or a brace).

    Plain values stay byte for byte ("1--2" stays "1--2"), so what we export reads back
    the same; ``Mart{\\'\\i}n`` and ``{TensorFlow}`` are decoded.
    """

    def _transform_python_value_string(self, python_string: str):
        if "\\" in python_string or "{" in python_string:
            return super()._transform_python_value_string(python_string)
        return python_string, ""


def _failure(block) -> str:
    """Why bibtexparser could not read a block, with what to do about it."""
    reason = (str(getattr(block, "error", "") or "").strip().splitlines() or [""])[0]
    raw = block.raw or ""
    opened, closed = raw.count("{") - raw.count("\\{"), raw.count("}") - raw.count("\\}")
    if opened != closed:
        return (f"unbalanced braces ({opened} '{{' but {closed} '}}'); close every brace in this entry "
                "(bibtexparser resumed at the next @)")
    if raw.count('"') % 2:
        return "unbalanced double quotes; close every quoted value"
    return f"could not parse this entry ({reason or type(block).__name__}); check its fields are name = {{value}},"


def parse(text: str) -> tuple[list[Entry], list[dict]]:
    """Entries and the blocks that failed, each failure as ``{"key", "line", "reason"}``."""
    lib = bibtexparser.parse_string(text, append_middleware=[_DecodeLatexWhereMarked()])
    first_line = {}
    for b in lib.blocks:
        if isinstance(b, Entry):
            first_line.setdefault(b.key, (b.start_line or 0) + 1)
    failed = []
    for b in lib.failed_blocks:
        key = getattr(b, "key", None) or re.search(r"@\w+\s*\{\s*([^,\s]*)", b.raw or "")
        key = key if isinstance(key, str) else (key.group(1) if key else None)
        line = (b.start_line or 0) + 1
        if type(b).__name__ == "DuplicateBlockKeyBlock":
            reason = (f"duplicate key {key!r} (first on line {first_line.get(key, '?')}); "
                      "give each entry its own key")
        else:
            reason = _failure(b)
        failed.append({"key": key, "line": line, "field": "", "reason": reason})
    return list(lib.entries), failed


def import_bib(path: Path, into: Path, existing: set[str], dry_run: bool = False) -> ImportReport:
    """Create ``into/<id>.yaml`` stubs for the entries of ``path``; never overwrite.

    All or nothing: an entry that cannot become a record (a block that does not parse, a
    duplicate key, an unknown entry type, a missing or invalid field, two entries making one
    id) is an error, and with any error nothing is written. An entry whose record already
    exists is skipped, so importing the same file twice is harmless.
    """
    from pydantic import ValidationError

    from .knowledge.loader import _message
    from .knowledge.scaffold import render_stub

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise KBError(f"{path}: not UTF-8 (byte offset {e.start}); convert the file to UTF-8") from None
    except OSError as e:
        raise KBError(f"{path}: cannot read ({e.strerror})") from None
    entries, failed = parse(text)
    report = ImportReport(entries=len(entries) + len(failed), errors=[dict(f) for f in failed])
    planned: dict[str, str] = {}
    made_by: dict[str, tuple[str, int]] = {}
    for entry in entries:
        line = (entry.start_line or 0) + 1

        def error(reason: str, where: str = "") -> None:
            report.errors.append({"key": entry.key, "line": line, "field": where, "reason": reason})

        kind = entry.entry_type.lower()
        if kind not in ENTRY_TYPES:
            error(f"unknown entry type @{entry.entry_type}{did_you_mean(kind, sorted(ENTRY_TYPES))}; "
                  f"use one of {', '.join(sorted(ENTRY_TYPES))}")
            continue
        data = to_record(entry)
        if not re.fullmatch(ID_RE, data["id"]):
            data["id"] = slugify(data["id"])
        if data["id"] in existing:
            report.skipped.append({"key": entry.key, "line": line, "reason": f"papers/{data['id']}.yaml exists"})
            continue
        if data["id"] in made_by:
            other, other_line = made_by[data["id"]]
            error(f"makes the same id {data['id']!r} as {other!r} (line {other_line}); "
                  "add kbid = {another-id} to one of them", "kbid")
            continue
        try:
            Paper.model_validate(data)
        except ValidationError as e:
            for x in e.errors(include_url=False):
                where = _BIB_NAME.get(str(x["loc"][0]), str(x["loc"][0])) if x["loc"] else ""
                hint = f"add {where} = {{…}} to the entry" if x["type"] == "missing" else "fix it in the entry"
                error(f"{_message(x)}; {hint}", where)
            continue
        made_by[data["id"]] = (entry.key, line)
        planned[data["id"]] = render_stub(data)
        report.imported.append(data["id"])
    report.errors.sort(key=lambda e: e["line"])
    if report.errors:
        report.imported = []
        return report
    if not dry_run and planned:
        into.mkdir(parents=True, exist_ok=True)
        for paper_id, body in planned.items():
            with open(into / f"{paper_id}.yaml", "x", encoding="utf-8") as out:  # "x": never overwrite
                out.write(body)
    return report


#: Record field → the BibTeX field it came from, for messages.
_BIB_NAME = {"authors": "author", "arxiv": "eprint", "id": "key", "bibtex": "fields"}
