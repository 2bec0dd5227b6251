"""The typed configs of `rexbert finetune TASK`, their presets, and how the command line builds them.

One dataclass per task, all built by `typed_config.from_mapping` (unknown keys get a "did you mean", values
are type-checked, cross-field rules run in `check`) from a preset's mapping with the `--set` overrides on
top, before any model is loaded. Presets:

    smoke    a few steps on a slice of the data: the pipeline end to end in seconds (tests, first tries)
    default  one epoch over the data, batch sizes that fit a laptop CPU for the small models
    full     three epochs, larger batches and longer inputs (a GPU)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from eval_suites.data.esci_search import DEFAULT_PRODUCT_TEMPLATE
from rexbert_core.typed_config import ConfigError, apply_overrides, deep_merge, did_you_mean, from_mapping

__all__ = [
    "PRESETS",
    "TASKS",
    "ClassifyConfig",
    "DataSettings",
    "ExtractConfig",
    "RerankConfig",
    "RetrievalConfig",
    "TrainSettings",
    "task_config",
]


@dataclass
class DataSettings:
    """Which part of the data to use. ESCI tasks: `product_template` (a Python format string over the ESCI
    product columns), `locale`, `small_version`; queries are split by the data's own `split` column or, when
    it has none, by a seeded hash (`test_fraction`, `seed`). `max_train_queries` / `max_test_queries` cap
    the queries (a seeded choice), or for table and span data the examples."""

    product_template: str = DEFAULT_PRODUCT_TEMPLATE
    locale: str | None = None
    small_version: bool = False
    test_fraction: float = 0.2
    seed: int = 0
    max_train_queries: int | None = None
    max_test_queries: int | None = None
    hub_split: str = "train"

    def check(self, where: str) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"{where}.test_fraction must lie in (0, 1), got {self.test_fraction}")
        for name in ("max_train_queries", "max_test_queries"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(
                    f"{where}.{name} must be at least 1 (or null: all), got {getattr(self, name)}"
                )


@dataclass
class TrainSettings:
    """The trainer's settings (`TrainingArguments` of the task's trainer)."""

    epochs: float = 1.0
    max_steps: int = -1  # > 0: stop after this many steps (overrides epochs)
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    save_steps: int = 200
    seed: int = 0
    bf16: bool = False

    def check(self, where: str) -> None:
        if self.batch_size < 1 or self.save_steps < 1:
            raise ConfigError(f"{where}: batch_size and save_steps must be at least 1")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError(f"{where}: set epochs > 0 or max_steps > 0")


def _check_length(where: str, length: int | None) -> None:
    if length is not None and length < 8:
        raise ConfigError(
            f"{where}.max_seq_length must be at least 8 (or null: the model's context), got {length}"
        )


@dataclass
class RetrievalConfig:
    """A bi-encoder (`SentenceTransformerTrainer`). Each training example is a query, one of its Exact
    products and `judged_negatives` of its products judged Irrelevant or Complement plus `mined_negatives`
    mined from the training corpus by sentence-transformers' `mine_hard_negatives` (never a product the
    query judged Exact or Substitute). `mini_batch_size`: the cached loss's chunk (any `train.batch_size`
    fits in memory); `matryoshka_dims`: also train these truncated dimensions."""

    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    max_seq_length: int | None = 128  # tokens per text; null: the model's context
    pooling: Literal["mean", "cls"] = "mean"
    judged_negatives: int = 1
    mined_negatives: int = 1
    mini_batch_size: int = 16
    matryoshka_dims: list[int] = field(default_factory=list)
    top_k: int = 100  # products retrieved per query for the metrics and the reranker

    def check(self, where: str) -> None:
        if self.judged_negatives < 0 or self.mined_negatives < 0 or self.mini_batch_size < 1:
            raise ConfigError(f"{where}: negatives must be >= 0 and mini_batch_size >= 1")
        if any(d < 1 for d in self.matryoshka_dims):
            raise ConfigError(f"{where}.matryoshka_dims must be positive, got {self.matryoshka_dims}")
        _check_length(where, self.max_seq_length)


@dataclass
class RerankConfig:
    """A cross-encoder (`CrossEncoderTrainer`) over each query's judged list with the ESCI gains as labels.
    `loss`: `lambda` (listwise LambdaLoss, nDCG-Loss2++: it optimises the nDCG the task is scored with) or
    `bce` (graded pointwise binary cross-entropy with the gain as target). `mined_negatives`: products BM25
    ranks high for a query that it did not judge, added to its list as label 0 (off by default; see
    `rerank.py`). `retriever`: a bi-encoder whose top `top_k` are also reranked (`rerank@dense`);
    BM25's top `top_k` always are (`rerank@bm25`)."""

    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    max_seq_length: int | None = 192  # tokens per (query, product) pair; null: the model's context
    loss: Literal["lambda", "bce"] = "lambda"
    mined_negatives: int = 0
    max_products_per_query: int = 32
    retriever: str | None = None
    top_k: int = 100

    def check(self, where: str) -> None:
        _check_length(where, self.max_seq_length)
        if self.max_products_per_query < 2:
            raise ConfigError(
                f"{where}.max_products_per_query must be at least 2, got {self.max_products_per_query}"
            )


@dataclass
class ClassifyConfig:
    """A sequence classifier (the `Trainer`). `variant`: `esci` (4 classes E/S/C/I over query and product
    text), `substitute` (ESCI task 3: Substitute or not) or `table` (`text_column`, optional
    `text_pair_column`, `label_column` of any table, e.g. product category)."""

    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    max_seq_length: int | None = 128  # null: the model's context
    variant: Literal["esci", "substitute", "table"] = "esci"
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"

    def check(self, where: str) -> None:
        _check_length(where, self.max_seq_length)


@dataclass
class ExtractConfig:
    """Attribute / entity extraction as token classification from character spans (the span NER format:
    `sentences` + `spans` of `start`, `end`, `type`), BIO labels from the spans. Inputs are kept whole up to
    the model's context (`max_seq_length: null`); longer ones are cut there, and the cut is counted."""

    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    max_seq_length: int | None = None

    def check(self, where: str) -> None:
        _check_length(where, self.max_seq_length)


TASKS = {
    "retrieval": RetrievalConfig,
    "rerank": RerankConfig,
    "classify": ClassifyConfig,
    "extract": ExtractConfig,
}

PRESETS: dict[str, dict] = {
    "smoke": {
        "data": {"max_train_queries": 40, "max_test_queries": 20},
        "train": {"max_steps": 6, "batch_size": 8, "save_steps": 3, "learning_rate": 1e-4},
    },
    "default": {},
    "full": {"train": {"epochs": 3.0, "batch_size": 64}},
}


def task_config(
    task: str, preset: str = "default", overrides: list[str] | None = None, *, settings: dict | None = None,
    where: str | None = None,
):  # fmt: skip
    """The config of `task`: `preset`, then a mapping of `settings` (a run config's), then `--set` overrides,
    checked."""
    if task not in TASKS:
        raise ConfigError(
            f"unknown task {task!r}{did_you_mean(task, list(TASKS))}; choose from {sorted(TASKS)}"
        )
    if preset not in PRESETS:
        raise ConfigError(
            f"unknown preset {preset!r}{did_you_mean(preset, list(PRESETS))}; choose from {sorted(PRESETS)}"
        )
    mapping = apply_overrides(deep_merge(PRESETS[preset], settings or {}), overrides or [])
    return from_mapping(TASKS[task], mapping, where or f"finetune {task}")
