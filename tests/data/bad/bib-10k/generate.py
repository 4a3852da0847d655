"""Writes refs.bib into a folder at test time: 10,000 valid entries (about 1.6 MB, too big to
commit), and with ``broken=True`` the last entry's key repeats the first's."""
from pathlib import Path

N = 10_000


def generate(dest: Path, broken: bool = False) -> Path:
    entries = [f"@article{{paper{i:05d},\n  title = {{A Study of Things, Part {i}}},\n"
               f"  author = {{Doe, Jane and Roe, Richard and others}},\n  year = {{{1990 + i % 30}}},\n"
               f"  journal = {{Journal of Tests}},\n  pages = {{{i}--{i + 9}}}\n}}\n" for i in range(N)]
    if broken:
        entries[-1] = entries[-1].replace(f"paper{N - 1:05d}", "paper00000")
    path = dest / "refs.bib"
    path.write_text("".join(entries), encoding="utf-8")
    return path
