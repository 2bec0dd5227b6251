"""What every suite shares: budgets, the result record, and the fine-tune-then-predict loop."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from typing import Any, Sequence

import datasets
import numpy as np
import pandas as pd

from eval_suites.data import load_esci_pairs, split_by_query
from eval_suites.models import load_for_fine_tuning, load_tokenizer
from rexbert_core.typed_config import DataError

__all__ = [
    "Budget",
    "train_settings",
    "SuiteResult",
    "esci_train_test",
    "fine_tune_sequence_classifier",
    "require_examples",
    "sample_dataset",
    "sample_rows",
]


@dataclass
class Budget:
    """How much data and compute a suite may spend.

    max_train_examples / max_eval_examples cap the training and evaluation sets (a seeded sample
    when the data is larger; None = all). For esci-tokens, max_eval_examples caps the number of
    products per field. epochs, batch_size, learning_rate and max_seq_length drive the fine-tunes;
    seed fixes sampling, splits, masks and initialisation of the task heads.
    """

    max_train_examples: int | None = 1000
    max_eval_examples: int | None = 500
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_seq_length: int = 128
    seed: int = 0
    test_fraction: float = 0.2

    def override(self, **changes: Any) -> "Budget":
        """A copy with the given fields replaced (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def fine_tune_config(self) -> dict[str, Any]:
        """The fine-tuning settings a suite records in its results config."""
        names = ("epochs", "batch_size", "learning_rate", "max_seq_length", "seed")
        return {name: getattr(self, name) for name in names}


@dataclass
class SuiteResult:
    """One suite's outcome, serialised into results.json under the suite's name."""

    task_type: str  # Hub pipeline tag
    dataset: dict[str, str]  # name, type, split
    metrics: dict[str, float]
    main_metric: str
    n_examples: int
    config: dict[str, Any]
    seconds: float = 0.0
    skipped: dict[str, str] | None = None
    # Raw predictions and references per metric group, for inspection; not written to results.json.
    predictions: dict[str, dict[str, list]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        record = {
            "task_type": self.task_type,
            "dataset": self.dataset,
            "metrics": self.metrics,
            "main_metric": self.main_metric,
            "n_examples": self.n_examples,
            "seconds": round(self.seconds, 2),
            "config": self.config,
        }
        if self.skipped is not None:
            record["skipped"] = self.skipped
        return record


def train_settings(budget: Budget):
    """The fine-tuning tasks' `TrainSettings` for a suite's budget (no checkpoints: a suite trains once, in a
    temporary folder)."""
    from eval_suites.tasks.config import TrainSettings

    return TrainSettings(
        epochs=budget.epochs, batch_size=budget.batch_size, learning_rate=budget.learning_rate,
        seed=budget.seed, save_steps=10**9,
    )  # fmt: skip


def sample_rows(frame: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """At most `limit` rows, a seeded sample in original order when there are more."""
    if limit is None or len(frame) <= limit:
        return frame
    return frame.sample(n=limit, random_state=seed).sort_index().reset_index(drop=True)


def sample_dataset(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """At most `limit` examples, a seeded sample when there are more."""
    if limit is None or len(dataset) <= limit:
        return dataset
    return dataset.shuffle(seed=seed).select(range(limit))


def require_examples(name: str, split: str, count: int) -> None:
    """Raise a clear error for an empty split instead of training or scoring on nothing."""
    if count == 0:
        raise DataError(
            f"{name}: the {split} split is empty; nothing to {'train' if split == 'train' else 'score'}"
        )


def esci_train_test(suite: str, data: Sequence[str], budget: Budget):
    """ESCI pairs with product text, split by query into budget-capped train/test frames (neither empty).

    Returns `(pairs, train, test)`; `pairs` keeps the loading counts the suites report.
    """
    pairs = load_esci_pairs(data)
    train, test = split_by_query(pairs.frame, budget.test_fraction, budget.seed)
    train = sample_rows(train, budget.max_train_examples, budget.seed)
    test = sample_rows(test, budget.max_eval_examples, budget.seed)
    require_examples(suite, "train", len(train))
    require_examples(suite, "test", len(test))
    return pairs, train, test


def fine_tune_sequence_classifier(
    model_path: str,
    train: datasets.Dataset,
    evaluation: datasets.Dataset,
    budget: Budget,
    num_labels: int,
    id2label: dict[int, str] | None = None,
) -> np.ndarray:
    """Fine-tune a fresh sequence-classification head on `text_a` (+ `text_b`) -> `label` with the classify
    task's trainer (`eval_suites.tasks.classify`) and return the logits on `evaluation` (one column for
    regression, `num_labels == 1`)."""
    from eval_suites.tasks.classify import train_classifier

    tokenizer = load_tokenizer(model_path)
    problem_type = "regression" if num_labels == 1 else "single_label_classification"
    model = load_for_fine_tuning(model_path, "sequence", num_labels, id2label, problem_type)
    pair = "text_b" in train.column_names

    def encode(batch):
        texts = (batch["text_a"], batch["text_b"]) if pair else (batch["text_a"],)
        return tokenizer(*texts, truncation=True, max_length=budget.max_seq_length)

    columns = [c for c in train.column_names if c != "label"]
    train = train.map(encode, batched=True, remove_columns=columns)
    evaluation = evaluation.map(encode, batched=True, remove_columns=columns)
    with tempfile.TemporaryDirectory(prefix="rexbert-eval-") as output_dir:
        trainer = train_classifier(model, tokenizer, train, train_settings(budget), output_dir)
        predictions = trainer.predict(evaluation).predictions
    return predictions[0] if isinstance(predictions, tuple) else predictions
