"""Evaluation sets in the real benchmarks' formats, generated for the offline default run: ESCI
examples and products, span-annotated NER sentences and an SST-2-format sentiment task. The labels hold
by construction; the scores a model gets on them only show that the pipeline works end to end."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pandas as pd

from .documents import write_jsonl
from .generate import _choose, _listing_parts, _product
from .vocabulary import (
    ASPECTS,
    CATEGORIES,
    COLOURS,
    NER_TEMPLATES,
    NER_TYPES,
    QUERY_TEMPLATES,
    RELATIVES,
    REVIEW_CLOSERS_BAD,
    REVIEW_CLOSERS_GOOD,
    REVIEW_NEGATIVE,
    REVIEW_POSITIVE,
)

__all__ = ["sample_esci", "sample_ner", "sample_sentiment", "write_sample_eval_data"]

# ---------------------------------------------------------------------------------------------------
# Evaluation sets in the real benchmark formats (for the offline default run)
# ---------------------------------------------------------------------------------------------------


def _esci_group(rng: random.Random, query_index: int) -> tuple[str, list[tuple[dict, str]]]:
    """One query and its judged products: the queried product (E), the same kind of product from
    other brands (S), other products of the category (C) and products of other categories (I)."""
    category = rng.choice(list(CATEGORIES))
    anchor = _listing_parts(rng, category)
    query = rng.choice(QUERY_TEMPLATES).format(**anchor[0]).lower()
    judged = [(anchor, "E")]
    judged += [
        (_listing_parts(rng, category, str(anchor[0]["product"])), "S") for _ in range(rng.randint(1, 2))
    ]
    others = [p for p in CATEGORIES[category]["products"] if p != anchor[0]["product"]]
    judged += [(_listing_parts(rng, category, rng.choice(others)), "C") for _ in range(rng.randint(1, 2))]
    other_categories = [c for c in CATEGORIES if c != category]
    judged += [(_listing_parts(rng, rng.choice(other_categories)), "I") for _ in range(rng.randint(2, 3))]
    rows = []
    for number, ((slots, title, bullets, description), label) in enumerate(judged):
        product = {
            "product_id": f"SP{query_index:03d}{number:02d}",
            "product_title": title,
            "product_description": " ".join(description),
            "product_bullet_point": "\n".join(bullets),
            "product_brand": slots["brand"],
            "product_color": slots["colour"],
            "product_locale": "us",
        }
        rows.append((product, label))
    return query, rows


def sample_esci(
    seed: int = 2, n_queries: int = 60, test_fraction: float = 0.3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(examples, products) in the official ESCI schema, labels by construction, split by query."""
    rng = random.Random(seed)
    examples, products = [], []
    for query_index in range(n_queries):
        query, judged = _esci_group(rng, query_index)
        split = "test" if query_index < n_queries * test_fraction else "train"
        for product, label in judged:
            products.append(product)
            examples.append(
                {
                    "example_id": len(examples),
                    "query": query,
                    "query_id": query_index,
                    "product_id": product["product_id"],
                    "product_locale": "us",
                    "esci_label": label,
                    "small_version": 1,
                    "large_version": 1,
                    "split": split,
                }
            )
    return pd.DataFrame(examples), pd.DataFrame(products)


def sample_ner(seed: int = 3, n_sentences: int = 300) -> list[dict]:
    """Span-annotated shopping sentences ``{"sentences", "spans": [{start, end, type, term}]}`` with
    the entity types Product, Brand, Attribute and Component (whitespace-separated punctuation)."""
    rng = random.Random(seed)
    records = []
    for _ in range(n_sentences):
        slots = _product(rng, rng.choice(list(CATEGORIES)))
        text, spans = "", []
        for piece in rng.choice(NER_TEMPLATES).split():
            if text:
                text += " "
            if piece.startswith("["):
                name = piece.strip("[]")
                value = str(slots[name.lower()])
                spans.append(
                    {
                        "start": len(text),
                        "end": len(text) + len(value),
                        "type": NER_TYPES[name],
                        "term": value,
                    }
                )
                text += value
            else:
                text += piece
        records.append({"sentences": text, "spans": spans})
    return records


def sample_sentiment(seed: int = 4, n_train: int = 240, n_dev: int = 120) -> tuple[list[dict], list[dict]]:
    """(train, dev) review sentences labelled 1 (positive) / 0 (negative), SST-2 style."""
    rng = random.Random(seed)
    pools = {1: REVIEW_POSITIVE + REVIEW_CLOSERS_GOOD, 0: REVIEW_NEGATIVE + REVIEW_CLOSERS_BAD}
    rows = []
    for index in range(n_train + n_dev):
        label = index % 2
        category = rng.choice(list(CATEGORIES))
        slots = _product(rng, category)
        slots.update(relative=rng.choice(RELATIVES), colour2=rng.choice(COLOURS))
        sentence = _choose(rng, rng.choice(pools[label])).format(
            aspect=rng.choice(ASPECTS[category]), **slots
        )
        rows.append({"sentence": sentence.lower(), "label": label})
    rng.shuffle(rows)
    return rows[:n_train], rows[n_train:]


def eval_set_paths(out_dir: str | Path) -> dict[str, Path]:
    """Where `write_sample_eval_data(out_dir)` writes each set (known before it runs): ``esci_examples``,
    ``esci_products`` (the ESCI parquet pair under the release's own file names), ``glue`` (a folder with ``SST-2/train.tsv`` and
    ``dev.tsv`` built from review sentences: an SST-2-format sentiment task, not GLUE data) and ``ner``
    (span jsonl)."""
    out_dir = Path(out_dir)
    return {
        "esci_examples": out_dir / "esci" / "shopping_queries_dataset_examples.parquet",
        "esci_products": out_dir / "esci" / "shopping_queries_dataset_products.parquet",
        "glue": out_dir / "glue",
        "ner": out_dir / "ner" / "ner.jsonl",
    }


def write_sample_eval_data(out_dir: str | Path) -> dict[str, Path]:
    """Write the embedded evaluation sets in the formats the eval loaders read; returns `eval_set_paths`."""
    paths = eval_set_paths(out_dir)
    paths["esci_examples"].parent.mkdir(parents=True, exist_ok=True)
    examples, products = sample_esci()
    examples.to_parquet(paths["esci_examples"], index=False)
    products.to_parquet(paths["esci_products"], index=False)
    (paths["glue"] / "SST-2").mkdir(parents=True, exist_ok=True)
    for split, rows in zip(("train", "dev"), sample_sentiment()):
        pd.DataFrame(rows).to_csv(
            paths["glue"] / "SST-2" / f"{split}.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE
        )
    paths["ner"].parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(paths["ner"], sample_ner())
    return paths
