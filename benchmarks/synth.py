"""A synthetic knowledge base: N records with realistic fields and a sparse lineage DAG.

    python benchmarks/synth.py 2000 /tmp/kb2k        # a buildable project (mkdocs.yml, templates)

Each record looks like a context paper in papers/: facts, BibTeX, a citation count, a
bilingual overview, 0–2 passages with translations, reading links, 1–3 concepts, an
optional figure and 0–3 lineage edges. Edges arrive from earlier papers (so the graph is
a DAG), mostly from recent papers of the same topic, like a field's lineage. Same N and
seed → the same bytes.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "network layer attention gradient training convolution recurrent embedding token image "
    "sequence model loss learning representation encoder decoder residual normalization "
    "pooling dropout transformer language vision word context memory feature objective"
).split()
HANZI = "神經網路卷積詞嵌入注意力機制遞迴損失函數訓練資料集參數模型向量預訓練微調表示學習編碼解碼殘差正規化池化特徵目標序列影像語言"
TYPES = (
    "extends",
    "generalizes",
    "inspired-by",
    "replaces",
    "uses",
    "compares-with",
    "analyzes",
    "scales",
)
TRACKS = ("cv", "nlp", "foundations", "generative", "rl")


def _en(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _zh(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(HANZI) for _ in range(n)) + "。"


def record(
    i: int,
    rng: random.Random,
    earlier: list[tuple[str, list[str]]],
    topic_of: list[int],
    by_topic: dict[int, list[int]],
) -> dict:
    pid = f"p{i:06d}"
    year = 1990 + i * 35 // max(1, len(topic_of))
    concepts = [
        {
            "id": f"c{k}",
            "name": {"en": _en(rng, 2)[:-1], "zh-Hant": _zh(rng, 4)[:-1]},
            "description": {"en": _en(rng, 12), "zh-Hant": _zh(rng, 20)},
        }
        for k in range(rng.randint(1, 3))
    ]
    lineage = []
    # Like the real KB: ~2.4 lineage edges per paper, most paper → paper, some between concepts;
    # sources mostly among the latest papers of the same topic, now and then from anywhere.
    same = by_topic[topic_of[i]][-30:]
    for _ in range(rng.choice((1, 2, 2, 3, 3, 4)) if earlier else 0):
        j = rng.choice(same) if same and rng.random() < 0.9 else rng.randrange(i)
        src_id, src_concepts = earlier[j]
        kind = rng.random()
        src = f"{src_id}/{rng.choice(src_concepts)}" if kind >= 0.65 and src_concepts else src_id
        dst = f"{pid}/{rng.choice(concepts)['id']}" if 0.6 <= kind < 0.65 or kind >= 0.9 else pid
        if any(e["from"] == src and e["to"] == dst for e in lineage):
            continue
        lineage.append(
            {
                "from": src,
                "to": dst,
                "type": rng.choice(TYPES),
                "why": {"en": _en(rng, 14), "zh-Hant": _zh(rng, 24)},
                "evidence": f"§{rng.randint(1, 7)}",
                "basis": rng.choice(("stated", "interpretation")),
            }
        )
    rec = {
        "id": pid,
        "title": _en(rng, 7)[:-1],
        "authors": [f"Author {rng.randint(1, 5000)}" for _ in range(rng.randint(1, 6))],
        "year": year,
        "venue": rng.choice(("NeurIPS", "ICML", "ICLR", "CVPR", "ACL", "EMNLP", "JMLR")),
        "arxiv": f"{year % 100:02d}{rng.randint(1, 12):02d}.{rng.randint(10000, 99999)}"
        if year >= 2008
        else None,
        "bibtex": {
            "type": "inproceedings",
            "key": f"author{i}{year}",
            "fields": {"pages": f"{i % 900 + 1}--{i % 900 + 9}"},
        },
        "citations": [
            {"count": rng.randint(0, 90000), "source": "Semantic Scholar", "as_of": "2026-11"}
        ],
        "track": TRACKS[topic_of[i] % len(TRACKS)],
        "tags": sorted({rng.choice(WORDS) for _ in range(3)}),
        "summary": {
            "overview": {
                "en": " ".join(_en(rng, 15) for _ in range(4)),
                "zh-Hant": "".join(_zh(rng, 30) for _ in range(4)),
            }
        },
        "passages": [
            {"quote": _en(rng, 20), "section": f"§{k + 1}", "translation": _zh(rng, 30)}
            for k in range(rng.randint(0, 2))
        ],
        "reading": [
            {"kind": "paper", "title": "Paper", "url": f"https://example.org/papers/{pid}"}
        ],
        "concepts": concepts,
        "figures": [
            {
                "id": "params",
                "value": rng.randint(10**5, 10**9),
                "unit": "parameters",
                "source": "Table 1",
            }
        ]
        if rng.random() < 0.3
        else [],
        "lineage": lineage,
    }
    if rec["arxiv"] is None:
        del rec["arxiv"]
    return rec


def records(n: int, seed: int = 0):
    """Yield ``n`` record dicts in id order."""
    rng = random.Random(seed)
    topic_of = [rng.randrange(max(1, n // 50)) for _ in range(n)]
    earlier: list[tuple[str, list[str]]] = []
    by_topic: dict[int, list[int]] = {t: [] for t in set(topic_of)}
    for i in range(n):
        rec = record(i, rng, earlier, topic_of, by_topic)
        earlier.append((rec["id"], [c["id"] for c in rec["concepts"]]))
        by_topic[topic_of[i]].append(i)
        yield rec


def generate(n: int, dest: Path, seed: int = 0) -> Path:
    """Write a buildable project with ``n`` synthetic records into ``dest`` (replaced)."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "papers").mkdir(parents=True)
    for name in ("mkdocs.yml", "package.json", "package-lock.json"):
        shutil.copyfile(ROOT / name, dest / name)
    shutil.copytree(ROOT / "site_src" / "templates", dest / "site_src" / "templates")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for rec in records(n, seed):
        text = yaml.dump(rec, Dumper=dumper, allow_unicode=True, sort_keys=False, width=100)
        (dest / "papers" / f"{rec['id']}.yaml").write_text(text, encoding="utf-8")
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python benchmarks/synth.py N DIR")
    print(generate(int(sys.argv[1]), Path(sys.argv[2])))
