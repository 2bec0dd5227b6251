"""The embedded default corpus: deterministic, well-formed, varied, and loadable with `datasets`."""

from __future__ import annotations

import itertools
from collections import Counter

from rexbert_core.sample_corpus import SOURCES, classifier_examples, sample_documents, write_sample_corpus


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_documents_are_deterministic_and_well_formed():
    documents = sample_documents(seed=0)
    assert documents == sample_documents(seed=0)
    assert documents != sample_documents(seed=1)
    assert 300 <= len(documents) <= 800
    assert len({d["id"] for d in documents}) == len(documents)
    counts = Counter(d["source"] for d in documents)
    assert set(counts) == set(SOURCES) and min(counts.values()) >= 100
    for d in documents:
        assert set(d) == {"id", "text", "source", "domain", "category"}
        assert d["domain"] == ("general" if d["source"] == "general" else "ecommerce")
        assert "{" not in d["text"] and "}" not in d["text"], d["text"]  # every slot was filled
        assert len(d["text"].split()) >= 40
    assert len({d["category"] for d in documents}) >= 12


def test_documents_are_not_near_duplicates():
    """5-gram Jaccard between any two documents stays well below MinHash dedup thresholds (~0.7-0.8)."""
    shingles = [_shingles(d["text"]) for d in sample_documents(seed=0)]
    worst = max(len(a & b) / len(a | b) for a, b in itertools.combinations(shingles, 2))
    assert worst < 0.65


def test_write_sample_corpus_loads_with_datasets(tmp_path):
    from datasets import load_dataset

    paths = write_sample_corpus(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{s}.jsonl" for s in SOURCES)
    loaded = load_dataset(
        "json", data_files=[str(p) for p in paths], split="train", cache_dir=str(tmp_path / "cache")
    )
    assert loaded.num_rows == len(sample_documents(seed=0))
    assert set(loaded.unique("source")) == set(SOURCES)


def test_classifier_examples_are_balanced_learnable_and_not_the_corpus():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    examples = classifier_examples(seed=1, n_per_label=200)
    assert Counter(e["label"] for e in examples) == {"ecommerce": 200, "general": 200}
    corpus_texts = {d["text"] for d in sample_documents(seed=0)}
    assert not corpus_texts & {e["text"] for e in examples}
    train, test = examples[:300], examples[300:]
    vectorizer = TfidfVectorizer(max_features=100)
    model = LogisticRegression(max_iter=1000).fit(
        vectorizer.fit_transform([e["text"] for e in train]), [e["label"] for e in train]
    )
    accuracy = (
        model.predict(vectorizer.transform([e["text"] for e in test])) == [e["label"] for e in test]
    ).mean()
    assert accuracy > 0.85  # a bag of words learns the labels: they follow the text, not noise


def test_eval_sets_follow_the_benchmark_formats(tmp_path):
    import json

    import pandas as pd

    from rexbert_core.sample_corpus import write_sample_eval_data

    paths = write_sample_eval_data(tmp_path)
    examples, products = pd.read_parquet(paths["esci_examples"]), pd.read_parquet(paths["esci_products"])
    assert {"query", "query_id", "product_id", "esci_label", "split"} <= set(examples.columns)
    assert set(examples["product_id"]) <= set(products["product_id"])
    assert set(examples["esci_label"]) == {"E", "S", "C", "I"}
    train_queries = set(examples.loc[examples.split == "train", "query_id"])
    assert train_queries and not train_queries & set(examples.loc[examples.split == "test", "query_id"])
    for line in paths["ner"].read_text().splitlines():
        record = json.loads(line)
        for span in record["spans"]:
            assert record["sentences"][span["start"] : span["end"]] == span["term"]
    dev = pd.read_csv(paths["glue"] / "SST-2" / "dev.tsv", sep="\t")
    assert list(dev.columns) == ["sentence", "label"] and set(dev["label"]) == {0, 1}
