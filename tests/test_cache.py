"""The parse cache (.cache/kb/) only ever saves parsing: unchanged bytes are not parsed again,
changed bytes are, a damaged cache is ignored, and every load still validates the schema."""

import shutil

import pytest

import kb
from kb.knowledge import loader, yamlio

from .conftest import DATA


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("KB_NO_CACHE", raising=False)
    root = tmp_path / "kb"
    # A cache left in the fixture by a local `kb` run on it must not travel into the copy.
    shutil.copytree(DATA / "mini", root, ignore=shutil.ignore_patterns(".cache"))
    return root


def _cache_files(root):
    return list((root / ".cache" / "kb").glob("yaml-*.marshal"))


def test_second_load_does_not_parse_unchanged_records(project, monkeypatch):
    first = kb.load(project)
    assert len(_cache_files(project)) == 1
    monkeypatch.setattr(yamlio, "load", lambda text: pytest.fail("parsed a cached record"))
    second = kb.load(project)
    assert second.papers == first.papers


def test_an_edited_record_is_parsed_again(project, monkeypatch):
    kb.load(project)
    rec = project / "papers" / "b.yaml"
    rec.write_text(rec.read_text().replace("title: Paper B", "title: Paper B, edited"))
    parsed = []
    real = yamlio.load
    monkeypatch.setattr(yamlio, "load", lambda text: parsed.append(text) or real(text))
    assert kb.load(project).paper("b").title == "Paper B, edited"
    assert len(parsed) == 1


def test_schema_is_checked_even_for_cached_bytes(project, monkeypatch):
    kb.load(project)
    monkeypatch.setattr(
        loader.Paper,
        "model_validate",
        classmethod(lambda cls, data: (_ for _ in ()).throw(AssertionError("validated"))),
    )
    with pytest.raises(AssertionError, match="validated"):
        kb.load(project)


@pytest.mark.parametrize("damage", [b"", b"not marshal at all", b"\xe3\x00\x01"])
def test_a_damaged_cache_is_ignored_and_replaced(project, damage):
    kb.load(project)
    (cache,) = _cache_files(project)
    cache.write_bytes(damage)
    assert sorted(kb.load(project).papers) == ["a", "b", "c", "d", "e"]


def test_kb_no_cache_writes_nothing(project, monkeypatch):
    monkeypatch.setenv("KB_NO_CACHE", "1")
    kb.load(project)
    assert not (project / ".cache").exists()
