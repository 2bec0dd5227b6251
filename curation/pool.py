"""A labelled pool of e-commerce and general text assembled from the shared data folder.

Used to train and evaluate the e-commerce classifier and to exercise the whole pipeline on real text.
Shopping side: product titles and titles with descriptions (ecommerce_products_vespa), review sentences
and pros/cons phrases (ecommerce_reviews_liu), product-copy NER sentences (ecommerce_ner_lenovo).
General side: Wikipedia, Brown, speeches, ABC news and web text (general_text, cut into passages of
varying length), Common Crawl pages (web_samples_dolma, cut the same way) and AG News in all four
classes, its Business class included as hard negatives.

Examples shorter than `min_words` words are left out (a two-word pros/cons fragment such as "good price"
carries no domain signal a classifier can be held to), and exact repeats (after lower-casing and
whitespace folding) are kept once, so no held-out example also sits in the training part.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from curation.readers import iter_records
from curation.text import normalized_for_exact_dedup

__all__ = ["ECOMMERCE_SOURCES", "GENERAL_SOURCES", "Example", "listing_text", "load_shared_pool"]

ECOMMERCE_SOURCES = ("product_titles", "product_listings", "review_sentences", "pros_cons", "ner_sentences")
GENERAL_SOURCES = ("general_text", "common_crawl", "agnews_business", "agnews_other")


@dataclass
class Example:
    text: str
    is_ecommerce: bool
    source: str


def _column(path: Path, *columns: str) -> list[dict]:
    return pq.read_table(path, columns=list(columns)).to_pylist()


def _passages(text: str, rng: random.Random, min_words: int = 8, max_words: int = 150) -> list[str]:
    """Cut a long document into consecutive passages of random length (keeps the line breaks)."""
    lines = [line for line in text.splitlines() if line.strip()]
    passages, current, budget = [], [], rng.randint(min_words, max_words)
    for line in lines:
        current.append(line)
        if sum(len(part.split()) for part in current) >= budget:
            passages.append("\n".join(current))
            current, budget = [], rng.randint(min_words, max_words)
    if current:
        passages.append("\n".join(current))
    return passages


def listing_text(row: dict) -> str:
    description = (row.get("description") or "").strip()
    if description.startswith("## "):  # the descriptions repeat the title as a markdown header
        description = description.split("\n", 1)[-1].strip()
    return f"{row['title']}\n{description}"


def load_shared_pool(
    data_dir: str | Path, max_per_source: int = 4000, min_words: int = 3, seed: int = 0
) -> list[Example]:
    """The labelled pool (at most `max_per_source` examples per source), in a seeded random order."""
    data = Path(data_dir)
    rng = random.Random(seed)
    raw: dict[str, list[str]] = {}
    products = _column(data / "ecommerce_products_vespa/products.parquet", "title", "description")
    rng.shuffle(products)
    half = len(products) // 2  # titles and listings come from different products
    raw["product_titles"] = [row["title"] for row in products[:half]]
    raw["product_listings"] = [listing_text(row) for row in products[half:]]
    raw["review_sentences"] = [
        r["sentence"]
        for r in _column(data / "ecommerce_reviews_liu/product_review_sentences.parquet", "sentence")
    ]
    raw["pros_cons"] = [r["text"] for r in _column(data / "ecommerce_reviews_liu/pros_cons.parquet", "text")]
    raw["ner_sentences"] = [
        r["sentences"] for r in iter_records(str(data / "ecommerce_ner_lenovo/lenovo_ner_test.jsonl.gz"))
    ]
    raw["general_text"] = [
        p for r in _column(data / "general_text/documents.parquet", "text") for p in _passages(r["text"], rng)
    ]
    raw["common_crawl"] = [
        p
        for r in _column(data / "web_samples_dolma/cc_documents.parquet", "text")
        for p in _passages(r["text"], rng)
    ]
    agnews = [
        r
        for name in ("agnews_test.parquet", "agnews_alps_dev_split.parquet")
        for r in _column(data / "agnews_topics" / name, "text", "label")
    ]
    raw["agnews_business"] = [r["text"] for r in agnews if r["label"] == "Business"]
    raw["agnews_other"] = [r["text"] for r in agnews if r["label"] != "Business"]

    seen: set[str] = set()
    pool: list[Example] = []
    for source, texts in raw.items():
        rng.shuffle(texts)
        taken = 0
        for text in texts:
            key = normalized_for_exact_dedup(text)
            if taken >= max_per_source or len(text.split()) < min_words or key in seen:
                continue
            seen.add(key)
            pool.append(Example(text, source in ECOMMERCE_SOURCES, source))
            taken += 1
    rng.shuffle(pool)
    return pool
