"""Fuzzing load → validate → graph → render (the Markdown, not mkdocs) with hypothesis.

Generated records (the schema's shape, with random unicode, CJK, control characters, YAML
specials, wrong types, missing keys and random lineage) and mutated real records (byte flips,
line deletions, swapped keys) must either load and render, or fail with kb's own error whose
every problem reads ``file:line:col: …``. Anything else is a bug.

CI runs 100 examples per test; the long run is
``KB_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kb
from kb.errors import KBError, ValidationFailed
from kb.site.render import render

from .conftest import ROOT

SETTINGS = settings(
    max_examples=int(os.environ.get("KB_FUZZ_EXAMPLES", 100)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROBLEM = re.compile(r"^papers/[^:\n]+:\d+:\d+: (warning: )?Paper\(id=.*\)")
REAL = sorted(p for p in (ROOT / "papers").glob("*.yaml"))
TEMPLATES = ROOT / "site_src" / "templates"

# ------------------------------------------------------------------ generated records

YAML_SPECIALS = list(":{}[],&*#?|-<>=!%@`'\"\\~\t\n") + [
    "null",
    "~",
    "yes",
    "no",
    "0x1F",
    "1e3",
    ".inf",
    "- ",
    ": ",
    "---",
    "...",
    "!!str",
    "&a",
    "*a",
]
text = st.one_of(
    st.text(max_size=40),
    st.text(
        alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x4F00), min_size=1, max_size=20
    ),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),
    st.lists(st.sampled_from(YAML_SPECIALS), max_size=6).map("".join),
    st.sampled_from(
        [
            "<script>alert(1)</script>",
            "[x](javascript:alert(1))",
            "{{ 7*7 }}",
            "$a_{ij}$",
            "{: onclick=x}",
            "\ufeff",
            "\u2028",
            "\x85",
            "\ud800",
            "\U0001f600",
        ]
    ),
)
slug = st.one_of(st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True), text)
wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(text, max_size=2),
    st.dictionaries(text, text, max_size=2),
)


def maybe(strategy):
    """The value, a value of the wrong type, or the key left out (``...``)."""
    return st.one_of(strategy, strategy, strategy, wrong, st.just(...))


bilingual = st.fixed_dictionaries({"en": maybe(text), "zh-Hant": maybe(text)})
node = st.one_of(st.sampled_from(["p0", "p1", "p0/c0", "p1/c1", "p1/c0", "nowhere"]), slug)
record = st.fixed_dictionaries(
    {
        "id": maybe(slug),
        "title": maybe(text),
        "authors": maybe(st.lists(text, max_size=3)),
        "authors_complete": maybe(st.booleans()),
        "year": maybe(st.integers(1700, 2200)),
        "venue": maybe(text),
        "arxiv": maybe(st.from_regex(r"\d{4}\.\d{4,5}", fullmatch=True)),
        "url": maybe(st.just("https://a.b/c")),
        "track": maybe(st.sampled_from(["cv", "nlp", "rl", "x"])),
        "tags": maybe(st.lists(slug, max_size=3)),
        "curriculum": maybe(st.sampled_from(["01a", "1a", "10b"])),
        "summary": maybe(
            st.fixed_dictionaries(
                {"overview": maybe(bilingual)},
                optional={s: bilingual for s in ("problem", "method", "results")},
            )
        ),
        "passages": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"quote": maybe(text), "section": maybe(text), "translation": maybe(text)}
                ),
                max_size=2,
            )
        ),
        "reading": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "kind": maybe(st.sampled_from(["blog", "paper", "x"])),
                        "title": maybe(text),
                        "url": maybe(text),
                    }
                ),
                max_size=2,
            )
        ),
        "concepts": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "id": maybe(st.sampled_from(["c0", "c1"]) | slug),
                        "name": maybe(bilingual),
                        "description": maybe(bilingual),
                    }
                ),
                max_size=2,
            )
        ),
        "figures": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "id": maybe(slug),
                        "value": maybe(st.floats()),
                        "unit": maybe(text),
                        "text": maybe(text),
                        "source": maybe(text),
                    }
                ),
                max_size=2,
            )
        ),
        "lineage": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "from": maybe(node),
                        "to": maybe(node),
                        "type": maybe(st.sampled_from(["extends", "uses", "part-of", "x"])),
                        "why": maybe(bilingual),
                        "evidence": maybe(text),
                        "basis": maybe(st.sampled_from(["stated", "interpretation", "x"])),
                    }
                ),
                max_size=3,
            )
        ),
        "bibtex": maybe(
            st.fixed_dictionaries(
                {
                    "type": maybe(st.sampled_from(["article", "misc"])),
                    "key": maybe(text),
                    "fields": maybe(st.dictionaries(text, text, max_size=2)),
                }
            )
        ),
        "extra_key": maybe(text),
    }
)


def strip(value):
    """Drop the keys :func:`maybe` left out."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if v is not ...}
    if isinstance(value, list):
        return [strip(v) for v in value if v is not ...]
    return value


def dump(data) -> bytes:
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode(
            "utf-8", "surrogatepass"
        )
    except yaml.YAMLError:
        return yaml.safe_dump(data, allow_unicode=False, sort_keys=False).encode("utf-8")


# ------------------------------------------------------------------ the pipeline


def project(files: dict[str, bytes]) -> Path:
    root = Path(tempfile.mkdtemp(prefix="kb-fuzz-"))
    shutil.copytree(TEMPLATES, root / "site_src" / "templates")
    (root / "papers").mkdir()
    for name, raw in files.items():
        (root / "papers" / name).write_bytes(raw)
    return root


def check_pipeline(files: dict[str, bytes], strict: bool) -> None:
    """load → validate → graph → render; only success or KBError with file:line:col problems."""
    root = project(files)
    try:
        try:
            base = kb.load(root, strict=strict)
        except ValidationFailed as e:
            assert e.problems, "ValidationFailed without problems"
            for p in e.problems:
                assert PROBLEM.match(str(p)), str(p)
            return
        except KBError as e:
            assert str(e), "KBError without a message"
            return
        pages = render(base)
        for _rel, body in pages.items():
            if isinstance(body, str):
                body.encode("utf-8")  # what write_tree does: every page must be writable
    finally:
        shutil.rmtree(root, ignore_errors=True)


@SETTINGS
@given(first=record, second=record, strict=st.booleans())
def test_generated_records_load_and_render_or_fail_cleanly(first, second, strict):
    first, second = strip(first), strip(second)
    # Named after their id where it is a usable file name (so id ≠ file name is rare but possible).
    ids = [r.get("id") if isinstance(r.get("id"), str) else "" for r in (first, second)]
    names = [f"{i}.yaml" if re.fullmatch(r"[\w.-]{1,40}", i) else "x.yaml" for i in ids]
    if names[0] == names[1]:
        names[1] = "other.yaml"
    # p0 and p1 give random lineage something to reach; the generated records may point at them.
    base = {
        "p0.yaml": dump(
            {
                "id": "p0",
                "title": "P0",
                "authors": ["A B"],
                "year": 2000,
                "concepts": [{"id": "c0", "name": {"en": "C0", "zh-Hant": "概念"}}],
            }
        ),
        "p1.yaml": dump(
            {
                "id": "p1",
                "title": "P1",
                "authors": ["A B"],
                "year": 2001,
                "concepts": [{"id": "c1", "name": {"en": "C1", "zh-Hant": "概念"}}],
            }
        ),
    }
    check_pipeline({**base, names[0]: dump(first), names[1]: dump(second)}, strict)


# ------------------------------------------------------------------ mutated real records


def _real(path: Path, keep_lineage: bool) -> bytes:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.pop("runnable", None)  # no runnable/ folder in the fuzz project,
    data.pop("teaching", None)  # nor papers/figures/ (tests/test_teaching.py covers those)
    if not keep_lineage:
        data.pop("lineage", None)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100).encode("utf-8")


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("delete-line"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("swap-keys"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(
        st.just("insert"),
        st.integers(0, 10**6),
        st.sampled_from(list(b"\t\n:{}[]&*!|>'\"#%@`\x00\xff")),
    ),
)


def mutate(raw: bytes, steps) -> bytes:
    data = bytearray(raw)
    for kind, a, b in steps:
        if kind == "flip" and data:
            data[a % len(data)] = b
        elif kind == "insert":
            data.insert(a % (len(data) + 1), b)
        else:
            lines = bytes(data).split(b"\n")
            i = a % len(lines)
            if kind == "delete-line":
                del lines[i]
            else:  # swap the keys of two lines ("key: value" → "other: value")
                j = b % len(lines)
                ki, _, vi = lines[i].partition(b":")
                kj, _, vj = lines[j].partition(b":")
                if vi and vj:
                    lines[i], lines[j] = kj + b":" + vi, ki + b":" + vj
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@SETTINGS
@given(
    path=st.sampled_from(REAL),
    keep_lineage=st.booleans(),
    steps=st.lists(mutation, max_size=4),
    strict=st.booleans(),
)
def test_mutated_real_records_load_and_render_or_fail_cleanly(path, keep_lineage, steps, strict):
    check_pipeline({path.name: mutate(_real(path, keep_lineage), steps)}, strict)


def test_an_unmutated_real_record_renders():
    """The mutation test is not vacuous: without mutations a real record goes all the way through."""
    path = ROOT / "papers" / "transformer.yaml"
    root = project({path.name: _real(path, keep_lineage=False)})
    try:
        pages = render(kb.load(root))
        assert f"papers/{path.stem}.md" in pages
    finally:
        shutil.rmtree(root, ignore_errors=True)
