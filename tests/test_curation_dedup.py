"""Exact and MinHash deduplication on real product listings with planted duplicates.

Distinct set: real listings (title + description) from ecommerce_products_vespa, distinct products.
Planted: exact copies (re-cased, re-spaced) and near duplicates (a few words replaced or dropped, a
shop boilerplate line added). Checks: every exact copy and >= 90% of near duplicates removed, and every
distinct listing keeps one survivor (no false merges).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation.config import config_from_dict
from curation.pool import listing_text
from curation.run import run_pipeline

BOILERPLATE = [
    "Free shipping on orders over $35.",
    "Ships within 2 business days.",
    "Add to cart to see the final price.",
    "Customers also viewed similar items.",
]


def _near_duplicate(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for _ in range(2):
        i = rng.randrange(len(words))
        words[i] = rng.choice(["great", "new", "premium", "original"]) if rng.random() < 0.5 else ""
    return " ".join(w for w in words if w) + "\n" + rng.choice(BOILERPLATE)


def _exact_copy(text: str) -> str:
    return "  " + text.upper().replace(" ", "   ") + "\n"


def _dedup_only_config(tmp_path: Path, data: Path) -> dict:
    off = {"enabled": False}
    return {
        "output_dir": str(tmp_path / "out"),
        "tasks": 2,
        "workers": 1,
        "progress": False,
        "sources": [{"name": "listings", "path": str(data)}],
        "stages": {"quality": off, "language": off, "classifier": off, "pii": off},
    }


@pytest.fixture(scope="module")
def dedup_run(shared_data, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("dedup")
    rng = random.Random(0)
    rows = pq.read_table(
        shared_data / "ecommerce_products_vespa/products.parquet", columns=["title", "description"]
    ).to_pylist()
    originals = [listing_text(row) for row in rng.sample(rows, 400)]
    records = [{"id": f"orig-{i}", "text": text, "group": i} for i, text in enumerate(originals)]
    records += [{"id": f"exact-{i}", "text": _exact_copy(originals[i]), "group": i} for i in range(0, 400, 8)]
    records += [
        {"id": f"near-{i}", "text": _near_duplicate(originals[i], rng), "group": i} for i in range(3, 400, 4)
    ]
    rng.shuffle(records)
    data = tmp_path / "data"
    data.mkdir()
    for part in range(2):  # two files, so duplicates also cross task shards
        with (data / f"part{part}.jsonl").open("w") as handle:
            for record in records[part::2]:
                handle.write(json.dumps(record) + "\n")
    config = config_from_dict(_dedup_only_config(tmp_path, data))
    report = run_pipeline(config)
    kept = pq.read_table(str(tmp_path / "out/corpus"), columns=["id"]).column("id").to_pylist()
    return records, set(kept), report


def test_exact_copies_and_near_duplicates_are_removed(dedup_run):
    records, kept, report = dedup_run
    group_of = {r["id"]: r["group"] for r in records}
    survivors: dict[int, int] = {}
    for doc_id in kept:
        survivors[group_of[doc_id]] = survivors.get(group_of[doc_id], 0) + 1
    planted_exact = [r for r in records if r["id"].startswith("exact-")]
    planted_near = [r for r in records if r["id"].startswith("near-")]
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["exact_dedup"]["docs_removed"] == len(planted_exact)
    near_groups = {r["group"] for r in planted_near} - {r["group"] for r in planted_exact}
    recall = sum(survivors.get(g, 0) == 1 for g in near_groups) / len(near_groups)
    assert recall >= 0.9, f"near-duplicate recall {recall:.3f}"
    # no false merges: every distinct listing still has a survivor
    assert set(survivors) == set(range(400))
    assert report["totals"]["accounting_ok"]
