"""ESCI 4-class classification (Exact / Substitute / Complement / Irrelevant) with a cross-encoder.

The checkpoint gets a fresh sequence-classification head over the pair "[CLS] query [SEP] title
[SEP]" and is fine-tuned with the `Trainer`; pairs are split by query as in esci-similarity.
Scored with micro-F1 (main; equals accuracy for single-label prediction) and macro-F1 over all
four classes, so a class that is never predicted counts as F1 = 0.
"""

from __future__ import annotations

from typing import Sequence

import datasets
import pandas as pd

from eval_suites.common import Budget, SuiteResult, esci_train_test, fine_tune_sequence_classifier
from eval_suites.data import ESCI_LABELS
from eval_suites.metrics import compute_metric
from eval_suites.suite import NoOptions

__all__ = [
    "DATA_KEYS",
    "DEFAULT_BUDGET",
    "EsciClassificationSuite",
    "LABEL_IDS",
    "SUITE",
    "as_dataset",
    "run",
]

SUITE = "esci-classification"
DATA_KEYS = ("esci",)  # the --data keys that feed this suite, in order of preference
DEFAULT_BUDGET = Budget(
    max_train_examples=2000,
    max_eval_examples=1000,
    epochs=1,
    batch_size=16,
    learning_rate=5e-5,
    max_seq_length=96,
)
LABEL_IDS = {label: i for i, label in enumerate(ESCI_LABELS)}


def as_dataset(pairs: pd.DataFrame) -> datasets.Dataset:
    """(query, title) -> class id records."""
    return datasets.Dataset.from_dict(
        {
            "text_a": pairs["query"].tolist(),
            "text_b": pairs["product_title"].tolist(),
            "label": pairs["esci_label"].map(LABEL_IDS).tolist(),
        }
    )


def run(model_path: str, data: Sequence[str], budget: Budget = DEFAULT_BUDGET) -> SuiteResult:
    """Fine-tune a cross-encoder on ESCI labels and score micro/macro F1 on held-out queries."""
    pairs, train, test = esci_train_test(SUITE, data, budget)
    logits = fine_tune_sequence_classifier(
        model_path,
        as_dataset(train),
        as_dataset(test),
        budget,
        num_labels=len(ESCI_LABELS),
        id2label=dict(enumerate(ESCI_LABELS)),
    )
    predicted = logits.argmax(-1).tolist()
    gold = test["esci_label"].map(LABEL_IDS).tolist()
    metrics = compute_metric("classification_f1", predicted, gold, labels=list(range(len(ESCI_LABELS))))
    return SuiteResult(
        task_type="text-classification",
        dataset={"name": "ESCI query-product classification", "type": "esci", "split": "held-out queries"},
        metrics=metrics,
        main_metric="micro_f1",
        n_examples=len(test),
        config={
            "data": list(map(str, data)),
            "labels": list(ESCI_LABELS),
            "train_pairs": len(train),
            "test_pairs": len(test),
            "test_queries": int(test["query_id"].nunique()),
            "dropped_without_text": pairs.dropped_without_text,
            **budget.fine_tune_config(),
        },
        predictions={"classification": {"predictions": predicted, "references": gold}},
    )


class EsciClassificationSuite:
    """This module as a `Suite` (see `eval_suites.suite`)."""

    name, data_keys, default_budget, options = SUITE, DATA_KEYS, DEFAULT_BUDGET, NoOptions

    def run(self, model_path: str, data: Sequence[str], budget: Budget, options: NoOptions) -> SuiteResult:
        return run(model_path, data, budget)
