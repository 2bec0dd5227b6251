"""ESCI semantic similarity: a bi-encoder fine-tuned with CoSENT on query / product-title pairs.

The checkpoint's encoder gets mean pooling (sentence-transformers `Transformer` + `Pooling`).
Labels become graded similarities E=1, S=0.66, C=0.33, I=0. Pairs are split by query (a query
is either trained on or held out, never both). The cosine similarity of query and title
embeddings on the held-out queries is scored against the gains with Spearman (main) and Pearson,
once before fine-tuning (`zero_shot/...`) and once after `SentenceTransformerTrainer` with
`CoSENTLoss`.
"""

from __future__ import annotations

import tempfile
from typing import Sequence

import datasets
import pandas as pd
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.sentence_transformer.losses import CoSENTLoss
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
from sentence_transformers.util import pairwise_cos_sim
from transformers import PrinterCallback

from eval_suites.common import Budget, SuiteResult, esci_train_test, training_arguments
from eval_suites.data import ESCI_GAINS
from eval_suites.metrics import compute_metric
from eval_suites.models import expected_new_weights, load_tokenizer, register_model_types
from eval_suites.suite import NoOptions

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


def bi_encoder(model_path: str, max_seq_length: int) -> SentenceTransformer:
    """The checkpoint's encoder with mean pooling over tokens."""
    register_model_types()
    load_tokenizer(model_path)  # fail early, with a clear message, when the tokenizer is unusable
    with expected_new_weights():  # an MLM checkpoint loaded as a bare encoder leaves its MLM head out
        encoder = Transformer(str(model_path), max_seq_length=max_seq_length)
    return SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension(), "mean")])


def cosine_scores(model: SentenceTransformer, pairs: pd.DataFrame, batch_size: int) -> list[float]:
    """Cosine similarity between each query and its product title."""
    queries = model.encode(pairs["query"].tolist(), batch_size=batch_size, convert_to_tensor=True)
    titles = model.encode(pairs["product_title"].tolist(), batch_size=batch_size, convert_to_tensor=True)
    return pairwise_cos_sim(queries, titles).tolist()


def graded(pairs: pd.DataFrame) -> list[float]:
    """The ESCI label of every pair as a similarity target (E=1, S=0.66, C=0.33, I=0)."""
    return pairs["esci_label"].map(ESCI_GAINS).tolist()


def fine_tune(model: SentenceTransformer, train: pd.DataFrame, budget: Budget) -> None:
    """CoSENT fine-tune on (query, title, gain) triples with the sentence-transformers trainer."""
    dataset = datasets.Dataset.from_dict(
        {"query": train["query"].tolist(), "title": train["product_title"].tolist(), "score": graded(train)}
    )
    with tempfile.TemporaryDirectory(prefix="rexbert-eval-") as output_dir:
        args = training_arguments(budget, output_dir, SentenceTransformerTrainingArguments)
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=dataset, loss=CoSENTLoss(model)
        )
        trainer.remove_callback(PrinterCallback)  # it would print the end-of-training metrics dict
        trainer.train()


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
            "loss": "CoSENTLoss",
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
