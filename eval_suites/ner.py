"""E-commerce NER: a token-classification head fine-tuned on character-span annotations.

The fine-tuning is `rexbert finetune extract`'s (`eval_suites.tasks.extract`), in a temporary folder.
Sentences are split on whitespace and spans become BIO word tags (`data.spans_to_bio`). The
sentences are shuffled with `budget.seed` and split into train / test (`budget.test_fraction`),
since the shared set has one split only. Words are aligned to subword tokens by character offsets
(works for byte-level BPE and WordPiece alike): the first subword of a word carries its label and
prediction, the rest are ignored (-100). Words cut off by truncation are predicted "O" and counted
in the config. Scored with seqeval entity-level precision / recall / F1 (`entity_f1` metric).
"""

from __future__ import annotations

import tempfile
from typing import Sequence

import numpy as np

from eval_suites.common import Budget, SuiteResult, require_examples, train_settings
from eval_suites.data import load_span_ner
from eval_suites.metrics import compute_metric
from eval_suites.models import load_for_fine_tuning, load_tokenizer
from eval_suites.suite import NoOptions
from eval_suites.tasks.extract import (
    encode,
    first_subword_positions,
    split_sentences,
    train_token_classifier,
    word_predictions,
)
from rexbert_core.typed_config import ConfigError

__all__ = [
    "DATA_KEYS",
    "DEFAULT_BUDGET",
    "NerSuite",
    "SUITE",
    "encode",
    "first_subword_positions",
    "run",
    "split_sentences",
    "word_predictions",
]

SUITE = "ner"
DATA_KEYS = ("ner",)  # the --data keys that feed this suite, in order of preference
DEFAULT_BUDGET = Budget(
    max_train_examples=None,
    max_eval_examples=None,
    epochs=3,
    batch_size=16,
    learning_rate=1e-4,
    max_seq_length=128,
)


def run(model_path: str, data: Sequence[str], budget: Budget = DEFAULT_BUDGET) -> SuiteResult:
    """Fine-tune a token classifier on a seeded split of the span-annotated file and score entity F1."""
    if len(data) != 1:
        raise ConfigError(f"{SUITE}: give exactly one span-annotated jsonl file, got {list(data)}")
    ner = load_span_ner(data[0])
    train_idx, test_idx = split_sentences(ner, budget.test_fraction, budget.seed)
    train_idx, test_idx = train_idx[: budget.max_train_examples], test_idx[: budget.max_eval_examples]
    require_examples(SUITE, "train", len(train_idx))
    require_examples(SUITE, "test", len(test_idx))
    id2label = dict(enumerate(ner.label_names))
    label2id = {label: i for i, label in id2label.items()}
    tokenizer = load_tokenizer(model_path)
    model = load_for_fine_tuning(model_path, "token", len(id2label), id2label)
    train, _ = encode(tokenizer, ner, train_idx, label2id, budget.max_seq_length)
    test, alignments = encode(tokenizer, ner, test_idx, label2id, budget.max_seq_length)
    with tempfile.TemporaryDirectory(prefix="rexbert-eval-") as output_dir:  # the extract task's trainer
        trainer = train_token_classifier(model, tokenizer, train, train_settings(budget), output_dir)
        logits = np.asarray(trainer.predict(test).predictions)
    gold = [ner.tags[i] for i in test_idx]
    predicted, truncated = word_predictions(logits, alignments, [len(t) for t in gold], id2label)
    metrics = compute_metric("entity_f1", predicted, gold)
    return SuiteResult(
        task_type="token-classification",
        dataset={
            "name": "E-commerce NER (character spans)",
            "type": "span-ner",
            "split": "seeded test split",
        },
        metrics=metrics,
        main_metric="f1",
        n_examples=len(test_idx),
        config={
            "data": str(data[0]),
            "entity_types": ner.entity_types,
            "train_sentences": len(train_idx),
            "test_sentences": len(test_idx),
            "span_issues": ner.span_issues,
            "truncated_words": truncated,
            **budget.fine_tune_config(),
        },
        predictions={"entities": {"predictions": predicted, "references": gold}},
    )


class NerSuite:
    """This module as a `Suite` (see `eval_suites.suite`)."""

    name, data_keys, default_budget, options = SUITE, DATA_KEYS, DEFAULT_BUDGET, NoOptions

    def run(self, model_path: str, data: Sequence[str], budget: Budget, options: NoOptions) -> SuiteResult:
        return run(model_path, data, budget)
