"""Writes papers/big.yaml at test time: a record whose summary is 2 MB (not committed)."""
from pathlib import Path


def generate(dest: Path) -> None:
    (dest / "papers").mkdir(parents=True, exist_ok=True)
    text = ("id: big\ntitle: Big\nauthors: [A B]\nyear: 2000\nsummary:\n  overview:\n    en: "
            + "word " * 400_000 + "\n    zh-Hant: 字\n")
    (dest / "papers" / "big.yaml").write_text(text, encoding="utf-8")
