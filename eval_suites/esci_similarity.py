"""ESCI semantic similarity: the retrieval bi-encoder, scored on how its cosine follows the graded labels.

The checkpoint's encoder gets mean pooling and is fine-tuned by `rexbert finetune retrieval`'s trainer
(`eval_suites.tasks.retrieval`: each query with an Exact title and one of its Irrelevant / Complement titles
as negative, in-batch negatives, cached multiple-negatives ranking loss), in a temporary folder. Pairs are
split by query (a query is either trained on or held out, never both). The cosine similarity of query and
title embeddings on the held-out queries is scored against the graded labels E=1, S=0.66, C=0.33, I=0 with
Spearman (main) and Pearson, once before fine-tuning (`zero_shot/...`) and once after.
"""

from __future__ import annotations

import tempfile
from typing import Sequence

import pandas as pd
from sentence_transformers.util import pairwise_cos_sim

from eval_suites.common import Budget, SuiteResult, esci_train_test, train_settings
from eval_suites.data import ESCI_GAINS
from eval_suites.data.esci_search import SearchCollection
from eval_suites.metrics import compute_metric
from eval_suites.suite import NoOptions
from eval_suites.tasks import retrieval

__all__ = [
    "DATA_KEYS",
    "DEFAULT_BUDGET",
    "EsciSimilaritySuite",
    "SUITE",
    "bi_encoder",
    "cosine_scores",
    "fine_tune",
    "graded",
    "run",
]

SUITE = "esci-similarity"
DATA_KEYS = ("esci",)  # the --data keys that feed this suite, in order of preference
DEFAULT_BUDGET = Budget(
    max_train_examples=2000,
    max_eval_examples=1000,
    epochs=1,
    batch_size=16,
    learning_rate=5e-5,
    max_seq_length=64,
)


def bi_encoder(model_path: str, max_seq_length: int):
    """The checkpoint's encoder with mean pooling over tokens (the retrieval task's)."""
    return retrieval.bi_encoder(model_path, max_seq_length, "mean")


def cosine_scores(model, pairs: pd.DataFrame, batch_size: int) -> list[float]:
    """Cosine similarity between each query and its product title."""
    queries = model.encode(pairs["query"].tolist(), batch_size=batch_size, convert_to_tensor=True)
    titles = model.encode(pairs["product_title"].tolist(), batch_size=batch_size, convert_to_tensor=True)
    return pairwise_cos_sim(queries, titles).tolist()


def graded(pairs: pd.DataFrame) -> list[float]:
    """The ESCI label of every pair as a similarity target (E=1, S=0.66, C=0.33, I=0)."""
    return pairs["esci_label"].map(ESCI_GAINS).tolist()


def fine_tune(model, train: pd.DataFrame, budget: Budget) -> None:
    """The retrieval task's fine-tune on the training pairs (titles as the product texts)."""
    judgments = train.assign(split="train")[["query_id", "query", "product_id", "esci_label", "split"]]
    products = train.drop_duplicates("product_id")
    collection = SearchCollection(
        judgments, pd.DataFrame({"product_id": products["product_id"], "text": products["product_title"]}),
        "{product_title}", [],
    )  # fmt: skip
    examples = retrieval.training_examples(
        collection, model, judged_negatives=1, mined_negatives=0, seed=budget.seed
    )
    with tempfile.TemporaryDirectory(prefix="rexbert-eval-") as output_dir:
        retrieval.train_bi_encoder(
            model, examples, train_settings(budget), output_dir, mini_batch_size=budget.batch_size
        )


def run(model_path: str, data: Sequence[str], budget: Budget = DEFAULT_BUDGET) -> SuiteResult:
    """Zero-shot and CoSENT-fine-tuned Spearman/Pearson of cosine similarity on held-out queries."""
    pairs, train, test = esci_train_test(SUITE, data, budget)
    model = bi_encoder(model_path, budget.max_seq_length)
    gold = graded(test)
    zero_shot = cosine_scores(model, test, budget.batch_size)
    fine_tune(model, train, budget)
    tuned = cosine_scores(model, test, budget.batch_size)
    metrics = compute_metric("correlation", tuned, gold)
    metrics.update({f"zero_shot/{k}": v for k, v in compute_metric("correlation", zero_shot, gold).items()})
    return SuiteResult(
        task_type="sentence-similarity",
        dataset={"name": "ESCI query-product similarity", "type": "esci", "split": "held-out queries"},
        metrics=metrics,
        main_metric="spearman",
        n_examples=len(test),
        config={
            "data": list(map(str, data)),
            "train_pairs": len(train),
            "test_pairs": len(test),
            "train_queries": int(train["query_id"].nunique()),
            "test_queries": int(test["query_id"].nunique()),
            "dropped_without_text": pairs.dropped_without_text,
            "gains": ESCI_GAINS,
            "loss": "CachedMultipleNegativesRankingLoss",
            "pooling": "mean",
            **budget.fine_tune_config(),
        },
        predictions={
            "fine_tuned": {"predictions": tuned, "references": gold},
            "zero_shot": {"predictions": zero_shot, "references": gold},
        },
    )


class EsciSimilaritySuite:
    """This module as a `Suite` (see `eval_suites.suite`)."""

    name, data_keys, default_budget, options = SUITE, DATA_KEYS, DEFAULT_BUDGET, NoOptions

    def run(self, model_path: str, data: Sequence[str], budget: Budget, options: NoOptions) -> SuiteResult:
        return run(model_path, data, budget)
