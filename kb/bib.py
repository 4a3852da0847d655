"""BibTeX in and out, with bibtexparser 2.

``export`` writes one entry per record; ``import_bib`` turns a ``.bib`` into stub records.
Reading a real export takes bibtexparser's middlewares plus three of our own, in this order:

1. :class:`ResolveMacros` — ``@string`` macros (case-insensitive, as in BibTeX), the month
   macros (``jun`` → ``June``, what BibTeX's standard styles define) and ``#`` concatenation;
2. bibtexparser's ``RemoveEnclosingMiddleware``;
3. :class:`DecodeLatexWhereMarked` — ``Mart{\\'\\i}n`` → ``Martín``, plain values untouched;
4. :class:`ResolveCrossref` — a ``crossref`` child gets the fields it lacks from its parent
   (the parent's ``title`` becomes the child's ``booktitle``).

:func:`to_record` then normalises what exporters write differently: DOIs (``https://doi.org/…``,
``http://dx.doi.org/…``, ``doi:…``), arXiv ids (``eprint``, ``arxivId``, ``journal = {arXiv
preprint arXiv:…}``, DBLP's ``volume = {abs/…}``, arXiv URLs and DOIs, version suffixes dropped)
and BibLaTeX (``date``, ``journaltitle``, ``eprinttype``). An entry already in the knowledge base
— same DOI, same arXiv id, or the same normalised title and year — is *matched*, not imported.
bibtexparser keeps blocks it could not parse in ``failed_blocks`` and says nothing; here every
one of them is reported with its line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import bibtexparser
import bibtexparser.middlewares as mw
from bibtexparser.model import Entry, Field

from .errors import KBError, did_you_mean
from .knowledge.schema import ID_RE, Paper

#: BibTeX's entry types and the BibLaTeX ones Zotero / Better BibTeX write.
ENTRY_TYPES = {
    "article",
    "book",
    "booklet",
    "collection",
    "conference",
    "dataset",
    "inbook",
    "incollection",
    "inproceedings",
    "manual",
    "mastersthesis",
    "misc",
    "online",
    "patent",
    "phdthesis",
    "proceedings",
    "report",
    "software",
    "techreport",
    "thesis",
    "unpublished",
}
VENUE_FIELDS = (
    "venue",
    "journal",
    "journaltitle",
    "booktitle",
    "publisher",
    "school",
    "institution",
)
#: Fields that come from the record itself; a record's bibtex.fields may not hold them.
FACT_FIELDS = {"title", "author", "year", "doi", "url", "venue", "kbid", "eprint", "archiveprefix"}
#: Fields ``--merge`` does not copy into a curated record: those about the exporter's own copy
#: (a PDF path, when it was read, its tags) and those about the version it holds rather than the
#: paper the record describes (Zotero's ``date``/``version``/``pubstate`` of an arXiv revision
#: would contradict the record's year). A new stub keeps them, as the user's library had them.
NOT_MERGED = {
    "abstract",
    "annote",
    "annotation",
    "bibsource",
    "biburl",
    "date",
    "date-added",
    "date-modified",
    "file",
    "keywords",
    "mendeley-groups",
    "mendeley-tags",
    "owner",
    "pubstate",
    "timestamp",
    "urldate",
    "version",
}
MONTHS = {
    m[:3].lower(): m
    for m in (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    )
}
_ARXIV_ID = r"(\d{4}\.\d{4,5}|[a-z-]+(?:\.[a-z]{2})?/\d{7})(?:v\d+)?"
_ARXIV_BARE = re.compile(rf"\s*(?:arxiv:\s*)?{_ARXIV_ID}\s*", re.I)
_ARXIV_IN_TEXT = re.compile(rf"(?:arxiv\.org/(?:abs|pdf)/|arxiv[:.]\s*|\babs/){_ARXIV_ID}", re.I)
_DOI_PREFIX = re.compile(r"^\s*(?:https?://(?:dx\.)?doi\.org/|doi:\s*|doi\s+)", re.I)

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


def title_key(title: str) -> str:
    """A title as matching sees it: no case, accents, braces or punctuation.

    >>> title_key("Long {Short-Term} Memory.")
    'long short term memory'
    """
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


def normalise_doi(value: str) -> str:
    """A DOI as the record keeps it, from the ways exports write one.

    >>> normalise_doi("https://doi.org/10.1016/0893-6080(91)90009-T")
    '10.1016/0893-6080(91)90009-T'
    >>> normalise_doi("doi:10.1109/CVPR.2016.90")
    '10.1109/CVPR.2016.90'
    >>> normalise_doi("http://dx.doi.org/10.1162%2Fneco.1997.9.8.1735")
    '10.1162/neco.1997.9.8.1735'
    """
    value = _DOI_PREFIX.sub("", value.strip())
    return unquote(value) if "%" in value else value


def arxiv_id(fields: dict[str, str]) -> str | None:
    """The arXiv id an entry names anywhere exporters put it, without its version.

    >>> arxiv_id({"journal": "arXiv preprint arXiv:1512.03385"})
    '1512.03385'
    >>> arxiv_id({"url": "https://arxiv.org/abs/1706.03762v5"})
    '1706.03762'
    >>> arxiv_id({"eprint": "12345", "eprinttype": "pubmed"}) is None
    True
    """
    kind = (fields.get("eprinttype") or fields.get("archiveprefix") or "arxiv").lower()
    for name in ("eprint", "arxivid"):
        value = fields.get(name, "")
        if (name == "arxivid" or kind == "arxiv") and (m := _ARXIV_BARE.fullmatch(value)):
            return m.group(1)
    for name in (
        "journal",
        "journaltitle",
        "volume",
        "number",
        "note",
        "howpublished",
        "url",
        "doi",
    ):
        if m := _ARXIV_IN_TEXT.search(fields.get(name, "")):
            return m.group(1)
    return None


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
    for p in sorted(papers, key=lambda p: p.bibtex.key if p.bibtex else p.id):
        entry = to_entry(p)
        if entry.key in keys:
            raise KBError(
                f"papers/{p.id}.yaml and papers/{keys[entry.key]}.yaml share the BibTeX key {entry.key!r}"
            )
        keys[entry.key] = p.id
        lib.add(entry)
    return bibtexparser.write_string(lib)


# ---------------------------------------------------------------- parse


def _split_concatenation(value: str) -> list[str]:
    """``NIPS # " 30"`` → ``['NIPS', '" 30"']``: split at ``#`` outside braces and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(value):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == '"' and depth == 0:
            quoted = not quoted
        elif c == "#" and depth == 0 and not quoted:
            parts.append(value[start:i].strip())
            start = i + 1
    return parts + [value[start:].strip()]


class ResolveMacros(mw.ResolveStringReferencesMiddleware):
    """``@string`` macros, month macros and ``#`` concatenation, resolved in every field.

    bibtexparser resolves a value that is exactly one ``@string`` name, case-sensitively. BibTeX
    names are case-insensitive, ``jan`` … ``dec`` are predefined, and a value may concatenate
    (``booktitle = NIPS # " 30"``). A name defined nowhere is kept as written, not dropped.
    A resolved value is returned braced, so the enclosing is removed as for any other value.
    """

    def transform(self, library):
        macros = dict(MONTHS)

        def evaluate(expression: str) -> str:
            out = []
            for part in _split_concatenation(expression):
                if part[:1] + part[-1:] in ("{}", '""'):
                    out.append(part[1:-1])
                else:
                    out.append(macros.get(part.lower(), part))
            return "".join(out)

        for s in library.strings:
            m = re.match(r"@string\s*[{(]\s*[^=]+?\s*=\s*(.*)[})]\s*$", s.raw or "", re.S | re.I)
            macros[s.key.lower()] = evaluate(m.group(1).strip()) if m else str(s.value)
        for entry in library.entries:
            for f in entry.fields:
                if not isinstance(f.value, str):
                    continue
                parts = _split_concatenation(f.value)
                if len(parts) > 1 or parts[0][:1] + parts[0][-1:] not in ("{}", '""'):
                    f.value = "{" + evaluate(f.value) + "}"
        return library


class DecodeLatexWhereMarked(mw.LatexDecodingMiddleware):
    """Decode LaTeX only in values that hold LaTeX markup (a backslash or a brace).

    Plain values stay byte for byte ("1--2" stays "1--2"), so what we export reads back
    the same; ``Mart{\\'\\i}n`` and ``{TensorFlow}`` are decoded.
    """

    def _transform_python_value_string(self, python_string: str):
        if "\\" in python_string or "{" in python_string:
            return super()._transform_python_value_string(python_string)
        return python_string, ""


#: Fields a crossref child never takes from its parent (BibLaTeX's list, less what BibTeX lacks).
_NOT_INHERITED = {
    "crossref",
    "xref",
    "ids",
    "kbid",
    "label",
    "shorthand",
    "sortkey",
    "title",
    "subtitle",
    "titleaddon",
    "entryset",
    "related",
    "options",
}


class ResolveCrossref(mw.LibraryMiddleware):
    """A ``crossref = {parent}`` entry gets every field it lacks from the parent entry.

    As in BibLaTeX, the parent's ``title`` becomes the child's ``booktitle`` (a DBLP
    ``@proceedings`` names its volume in ``title``). The resolved ``crossref`` field is dropped:
    the record holds the fields themselves. The parent's ``parser_metadata["crossref_of"]``
    lists its children; a key that names no entry leaves the field as it is.
    """

    def transform(self, library):
        by_key = {e.key.lower(): e for e in library.entries}
        for child in library.entries:
            have = {k.lower(): k for k in child.fields_dict}
            ref = child.fields_dict.get(have.get("crossref", ""))
            parent = by_key.get(str(ref.value).strip().lower()) if ref else None
            if parent is None or parent is child:
                continue
            inherited = {
                f.key.lower(): f.value for f in parent.fields if f.key.lower() not in _NOT_INHERITED
            }
            title = next((f.value for f in parent.fields if f.key.lower() == "title"), None)
            if title and "booktitle" not in inherited:
                inherited["booktitle"] = title
            for key, value in inherited.items():
                if key not in have:
                    child.set_field(Field(key, value))
            child.pop(have["crossref"])
            parent.parser_metadata.setdefault("crossref_of", []).append(child.key)
        return library


def _failure(block) -> str:
    """Why bibtexparser could not read a block, with what to do about it."""
    reason = (str(getattr(block, "error", "") or "").strip().splitlines() or [""])[0]
    raw = block.raw or ""
    opened, closed = raw.count("{") - raw.count("\\{"), raw.count("}") - raw.count("\\}")
    if opened != closed:
        return (
            f"unbalanced braces ({opened} '{{' but {closed} '}}'); close every brace in this entry "
            "(bibtexparser resumed at the next @)"
        )
    if raw.count('"') % 2:
        return "unbalanced double quotes; close every quoted value"
    return f"could not parse this entry ({reason or type(block).__name__}); check its fields are name = {{value}},"


def parse(text: str) -> tuple[list[Entry], list[dict]]:
    """Entries and the blocks that failed, each failure as ``{"key", "line", "reason"}``."""
    stack = [
        ResolveMacros(),
        mw.RemoveEnclosingMiddleware(),
        DecodeLatexWhereMarked(),
        ResolveCrossref(),
    ]
    lib = bibtexparser.parse_string(text, parse_stack=stack)
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
            reason = (
                f"duplicate key {key!r} (first on line {first_line.get(key, '?')}); "
                "give each entry its own key"
            )
        else:
            reason = _failure(b)
        failed.append({"key": key, "line": line, "field": "", "reason": reason})
    return list(lib.entries), failed


# ---------------------------------------------------------------- entry → record


def _venue(fields: dict) -> str | None:
    return next((fields[k] for k in VENUE_FIELDS if fields.get(k)), None)


def to_record(entry: Entry) -> dict:
    """A stub record (plain data, validated by the caller) from one parsed BibTeX entry."""
    raw = {k: " ".join(str(v.value).split()) for k, v in entry.fields_dict.items()}
    f = {k.lower(): v for k, v in raw.items()}
    authors, complete = _authors(f.get("author") or f.get("editor") or "")
    year = re.search(r"\d{4}", f.get("year") or f.get("date") or "")
    arxiv = arxiv_id(f)
    doi = normalise_doi(f["doi"]) if f.get("doi") else None
    if not doi and _DOI_PREFIX.match(f.get("url", "")) and "doi.org/" in f["url"]:
        doi = normalise_doi(f["url"])
    consumed = FACT_FIELDS | ({"arxivid"} if arxiv else set())
    rec = {
        "id": f.get("kbid") or slugify(entry.key),
        "title": f.get("title", ""),
        "authors": authors,
        "authors_complete": complete,
        "year": int(year.group()) if year else None,
        "venue": _venue(f),
        "arxiv": arxiv,
        "doi": doi or None,
        "url": f.get("url") or None,
        "bibtex": {
            "type": entry.entry_type.lower(),
            "key": entry.key,
            "fields": {k: v for k, v in sorted(raw.items()) if k.lower() not in consumed},
        },
    }
    return {k: v for k, v in rec.items() if v is not None}


# ---------------------------------------------------------------- matching


@dataclass
class _Known:
    """A record the import can match: one already in the knowledge base, or an entry planned."""

    id: str
    doi: str | None
    arxiv: str | None
    path: Path | None = None  # an existing record's file
    paper: Paper | None = None
    key: str | None = None  # a planned entry's key


class _Index:
    """Records by DOI, arXiv id and (normalised title, year); the first one added wins."""

    def __init__(self) -> None:
        self.by: dict[str, dict] = {"doi": {}, "arxiv": {}, "title": {}}

    def add(self, known: _Known, title: str, year: int) -> None:
        if known.doi:
            self.by["doi"].setdefault(known.doi.lower(), known)
        if known.arxiv:
            self.by["arxiv"].setdefault(known.arxiv, known)
        self.by["title"].setdefault((title_key(title), year), known)

    def find(self, data: dict) -> tuple[_Known, str] | None:
        if data.get("doi") and (k := self.by["doi"].get(data["doi"].lower())):
            return k, "doi"
        if data.get("arxiv") and (k := self.by["arxiv"].get(data["arxiv"])):
            return k, "arxiv"
        k = self.by["title"].get((title_key(data.get("title", "")), data.get("year")))
        if (
            k
            and not _conflict(k.doi, data.get("doi"), str.lower)
            and not _conflict(k.arxiv, data.get("arxiv"))
        ):
            return k, "title"
        return None


def _conflict(a: str | None, b: str | None, norm=str) -> bool:
    """Both known and different: a title match between them is a different version, not a duplicate."""
    return bool(a and b and norm(a) != norm(b))


def existing_records(*folders: Path) -> dict[str, tuple[Path, Paper | None]]:
    """Every ``*.yaml`` in ``folders`` by file stem: its path and the record, or None if it does
    not validate on its own (its id is still taken)."""
    from .knowledge.loader import parse_record

    found: dict[str, tuple[Path, Paper | None]] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.yaml")):
            if path.stem not in found:
                rec, _ = parse_record(path.name, path.read_bytes())
                found[path.stem] = (path, rec.paper if rec else None)
    return found


# ---------------------------------------------------------------- merge (fill, never overwrite)


def fill(record: dict, data: dict) -> dict:
    """What an entry's record ``data`` adds to a ``record`` (both plain data) that lacks it:
    top-level facts, a ``bibtex`` block when the record has none, else the ``bibtex.fields`` it
    lacks (less :data:`NOT_MERGED`) if the entry is of the record's type. Never a value the
    record already holds.

    >>> fill({"doi": "10.1/x"}, {"doi": "10.1/y", "arxiv": "1512.03385"})
    {'arxiv': '1512.03385'}
    >>> fill({"arxiv": "1706.03762"}, {"doi": "10.48550/arXiv.1706.03762", "venue": "arXiv"})
    {'venue': 'arXiv'}
    """
    adds: dict = {
        k: data[k] for k in ("venue", "arxiv", "doi", "url") if data.get(k) and not record.get(k)
    }
    arxiv = record.get("arxiv") or adds.get("arxiv")
    if arxiv and adds.get("doi", "").lower() == f"10.48550/arxiv.{arxiv}".lower():
        del adds["doi"]  # arXiv's own DOI restates the arxiv id the record has
    theirs = {
        k: v
        for k, v in data.get("bibtex", {}).get("fields", {}).items()
        if k.lower() not in NOT_MERGED
    }
    if not record.get("bibtex") and "bibtex" in data:
        adds["bibtex"] = dict(data["bibtex"], fields=theirs)
    elif record.get("bibtex") and record["bibtex"].get("type") == data.get("bibtex", {}).get(
        "type"
    ):
        # Only from the same kind of entry: a CoRR @article's journal and volume would make a
        # conference record's @inproceedings describe two versions at once.
        ours = {k.lower() for k in record["bibtex"].get("fields", {})}
        if new := {k: v for k, v in theirs.items() if k.lower() not in ours}:
            adds["bibtex.fields"] = new
    return adds


def _apply(record: dict, adds: dict) -> None:
    """Put :func:`fill`'s additions into ``record`` (plain data) in place."""
    for k, v in adds.items():
        if k == "bibtex.fields":
            record["bibtex"].setdefault("fields", {}).update(v)
        else:
            record[k] = json.loads(json.dumps(v))  # a copy: nested dicts are not shared


def _combine(adds: dict, more: dict) -> None:
    """Add :func:`fill`'s additions ``more`` to earlier ones, ``adds``, for one file."""
    for k, v in more.items():
        if k == "bibtex.fields" and "bibtex" in adds:
            adds["bibtex"]["fields"].update(v)
        elif k == "bibtex.fields":
            adds.setdefault(k, {}).update(v)
        else:
            adds[k] = v


def _filled(adds: dict) -> list[str]:
    return [k for k in adds if k != "bibtex.fields"] + [
        f"bibtex.fields.{k}" for k in adds.get("bibtex.fields", {})
    ]


def _scalar(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name) else _scalar(name)


def _line_end(text: str, node) -> int:
    """The offset just past the line on which ``node`` ends (after a trailing comment)."""
    pos = node.end_mark.index
    if pos > 0 and text[pos - 1] == "\n":
        return pos
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl + 1


def _block(pairs: dict, indent: int) -> str:
    """Block-style YAML lines for plain data, strings double-quoted as the records write them."""
    out = ""
    for k, v in pairs.items():
        if isinstance(v, dict):
            out += " " * indent + f"{_key(k)}:" + ("\n" + _block(v, indent + 2) if v else " {}\n")
        else:
            out += " " * indent + f"{_key(k)}: {_scalar(v)}\n"
    return out


def merge_text(text: str, adds: dict) -> str:
    """``text`` with ``adds`` (from :func:`fill`) inserted; every other byte stays where it was.

    A top-level key goes after the nearest key that precedes it in the schema's order;
    ``bibtex.fields`` entries go after the last field (into ``{…}`` for a flow mapping); a key
    written with no value (``doi: null``) gets its value in place.
    """
    import yaml

    from .knowledge.yamlio import Loader

    newline = "\r\n" if "\r\n" in text else "\n"  # a file saved on Windows keeps its line ends
    if not text.endswith("\n"):
        text += newline  # an insertion may land at the end
    root = yaml.compose(text, Loader=Loader)
    top = {k.value: (k, v) for k, v in root.value}
    order = [f.alias or name for name, f in Paper.model_fields.items()]
    inserts: list[tuple[int, str]] = []
    fields_adds = adds.get("bibtex.fields")
    if fields_adds:
        bib = top["bibtex"][1]
        inner = {k.value: (k, v) for k, v in bib.value}
        if (
            "fields" in inner
            and inner["fields"][1].flow_style
            or (bib.flow_style and "fields" in inner)
        ):
            node = inner["fields"][1]
            body = ", ".join(f"{_key(k)}: {_scalar(v)}" for k, v in fields_adds.items())
            inserts.append((node.end_mark.index - 1, (", " if node.value else "") + body))
        elif "fields" in inner:
            node = inner["fields"][1]
            indent = (
                node.value[0][0].start_mark.column
                if node.value
                else inner["fields"][0].start_mark.column + 2
            )
            inserts.append((_line_end(text, node), _block(fields_adds, indent)))
        elif bib.flow_style:
            inserts.append(
                (
                    bib.end_mark.index - 1,
                    ", fields: {"
                    + ", ".join(f"{_key(k)}: {_scalar(v)}" for k, v in fields_adds.items())
                    + "}",
                )
            )
        else:
            indent = bib.value[0][0].start_mark.column
            inserts.append((_line_end(text, bib), _block({"fields": fields_adds}, indent)))
    for name in [n for n in order if n in adds]:
        if name in top:  # "doi: null": the value is replaced, the key and its comment stay
            key, node = top[name]
            if isinstance(adds[name], dict):
                piece = "\n" + _block(adds[name], key.start_mark.column + 2).rstrip("\n")
            else:
                piece = (" " if text[node.start_mark.index - 1] == ":" else "") + _scalar(
                    adds[name]
                )
            inserts.append((node.start_mark.index, piece, node.end_mark.index))
            continue
        before = [n for n in order[: order.index(name)] if n in top]
        anchor = top[before[-1]][1] if before else root.value[-1][1]
        indent = root.value[0][0].start_mark.column
        inserts.append((_line_end(text, anchor), _block({name: adds[name]}, indent)))
    for at, piece, *until in sorted(inserts, key=lambda x: x[0], reverse=True):
        text = text[:at] + piece.replace("\n", newline) + text[until[0] if until else at :]
    return text


# ---------------------------------------------------------------- import


@dataclass
class ImportReport:
    """What an import found. ``errors`` make the file unusable as it is: when there are any,
    nothing is written. ``matched`` are entries already in the knowledge base (or earlier in
    the same file); ``renamed`` got another id because theirs was taken; ``skipped`` are
    crossref parents, whose fields went into their children."""

    entries: int = 0
    imported: list[str] = field(default_factory=list)
    matched: list[dict] = field(default_factory=list)
    renamed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "entries": self.entries,
            "imported": len(self.imported),
            "ids": self.imported,
            "matched": self.matched,
            "renamed": self.renamed,
            "skipped": self.skipped,
            "merged": self.merged,
            "errors": self.errors,
        }


def import_bib(
    path: Path,
    into: Path,
    existing: dict[str, tuple[Path, Paper | None]] | None = None,
    dry_run: bool = False,
    merge: bool = False,
) -> ImportReport:
    """Create ``into/<id>.yaml`` stubs for the entries of ``path`` that are not in the knowledge
    base yet; never overwrite.

    ``existing`` is what :func:`existing_records` returns for the knowledge base (default: the
    records in ``into``). An entry with the DOI, arXiv id or normalised title and year of an
    existing record, or of an earlier entry, is matched to it, not imported; with ``merge`` the
    matched record gets the fields it lacks (:func:`fill`), its other bytes unchanged. An entry
    whose id is taken gets the first free ``<id>-2``, ``<id>-3`` … (reported in ``renamed``).

    All or nothing: an entry that cannot become a record (a block that does not parse, a
    duplicate key, an unknown entry type, a missing or invalid field) is an error, and with any
    error nothing is written.
    """
    from pydantic import ValidationError

    from .knowledge.loader import _message, parse_record
    from .knowledge.scaffold import render_stub

    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise KBError(
            f"{path}: not UTF-8 (byte offset {e.start}); convert the file to UTF-8"
        ) from None
    except OSError as e:
        raise KBError(f"{path}: cannot read ({e.strerror})") from None
    existing = existing_records(into) if existing is None else existing
    entries, failed = parse(text)
    report = ImportReport(entries=len(entries) + len(failed), errors=[dict(f) for f in failed])
    index = _Index()
    taken: dict[str, str] = {}
    for stem, (file, paper) in existing.items():
        where = _shown(file)
        taken[stem] = where
        if paper is not None:
            taken.setdefault(paper.id, where)
            index.add(
                _Known(paper.id, paper.doi, paper.arxiv, path=file, paper=paper),
                paper.title,
                paper.year,
            )
    planned: dict[str, dict] = {}
    merged: dict[Path, tuple[dict, dict]] = {}  # record file → (its data so far, what to add)
    for entry in entries:
        line = (entry.start_line or 0) + 1

        def error(reason: str, where: str = "", key: str = entry.key, line: int = line) -> None:
            report.errors.append({"key": key, "line": line, "field": where, "reason": reason})

        kind = entry.entry_type.lower()
        if kind not in ENTRY_TYPES:
            error(
                f"unknown entry type @{entry.entry_type}{did_you_mean(kind, sorted(ENTRY_TYPES))}; "
                f"use one of {', '.join(sorted(ENTRY_TYPES))}"
            )
            continue
        if children := entry.parser_metadata.get("crossref_of"):
            report.skipped.append(
                {
                    "key": entry.key,
                    "line": line,
                    "reason": "crossref parent: its fields "
                    f"went into {', '.join(repr(c) for c in children)}",
                }
            )
            continue
        data = to_record(entry)
        if not re.fullmatch(ID_RE, data["id"]):
            data["id"] = slugify(data["id"])
        try:
            Paper.model_validate(data)
        except ValidationError as e:
            for x in e.errors(include_url=False):
                where = _BIB_NAME.get(str(x["loc"][0]), str(x["loc"][0])) if x["loc"] else ""
                hint = (
                    f"add {where} = {{…}} to the entry"
                    if x["type"] == "missing"
                    else "fix it in the entry"
                )
                error(f"{_message(x)}; {hint}", where)
            continue
        if found := index.find(data):
            known, by = found
            item = {"key": entry.key, "line": line, "id": known.id, "by": by}
            if known.key is not None:
                item["duplicate_of"] = known.key
            report.matched.append(item)
            if merge:
                if known.path is None:  # an earlier entry of this file: fill its planned data
                    record, adds = planned[known.id], None
                else:
                    record, adds = merged.setdefault(
                        known.path,
                        (known.paper.model_dump(mode="json", by_alias=True, exclude_none=True), {}),
                    )
                new = fill(record, data)
                _apply(record, new)
                if adds is not None:
                    _combine(adds, new)
                item["filled"] = _filled(new)
            continue
        paper_id = wanted = data["id"]
        n = 1
        while paper_id in taken:
            n += 1
            paper_id = f"{wanted[:77]}-{n}"
        if paper_id != wanted:
            data["id"] = paper_id
            report.renamed.append(
                {
                    "key": entry.key,
                    "line": line,
                    "id": paper_id,
                    "reason": f"{wanted!r} is taken by {taken[wanted]}",
                }
            )
        taken[paper_id] = f"entry {entry.key!r} (line {line})"
        index.add(
            _Known(paper_id, data.get("doi"), data.get("arxiv"), key=entry.key),
            data["title"],
            data["year"],
        )
        planned[paper_id] = data
        report.imported.append(paper_id)
    texts: dict[Path, str] = {}
    for file, (_, adds) in merged.items():
        if not adds:
            continue
        old = file.read_bytes().decode("utf-8")  # as it is: no newline translation
        new = merge_text(old, adds)
        rec, problems = parse_record(_shown(file), new.encode("utf-8"))
        errors = [p for p in problems if p.severity == "error"]
        if rec is None or errors:  # pragma: no cover - fill() only adds what the schema accepts
            raise KBError(
                f"merging into {_shown(file)} would break it: {errors[0] if errors else 'invalid'}"
            )
        texts[file] = new
        report.merged.append(rec.paper.id)
    report.errors.sort(key=lambda e: e["line"])
    if report.errors:
        report.imported, report.merged = [], []
        return report
    if not dry_run:
        if planned:
            into.mkdir(parents=True, exist_ok=True)
        for paper_id, data in planned.items():
            with open(
                into / f"{paper_id}.yaml", "x", encoding="utf-8"
            ) as out:  # "x": never overwrite
                out.write(render_stub(data))
        for file, new in texts.items():
            tmp = file.with_name(f".{file.name}.merge")
            tmp.write_bytes(new.encode("utf-8"))
            os.replace(tmp, file)
    return report


def _shown(file: Path) -> str:
    """``papers/resnet.yaml`` for messages: the folder and the file name."""
    return f"{file.parent.name}/{file.name}"


#: Record field → the BibTeX field it came from, for messages.
_BIB_NAME = {"authors": "author", "arxiv": "eprint", "id": "key", "bibtex": "fields"}
