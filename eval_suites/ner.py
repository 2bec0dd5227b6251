"""E-commerce NER: a token-classification head fine-tuned on character-span annotations.

Sentences are split on whitespace and spans become BIO word tags (`data.spans_to_bio`). The
sentences are shuffled with `budget.seed` and split into train / test (`budget.test_fraction`),
since the shared set has one split only. Words are aligned to subword tokens by character offsets
(works for byte-level BPE and WordPiece alike): the first subword of a word carries its label and
prediction, the rest are ignored (-100). Words cut off by truncation are predicted "O" and counted
in the config. Scored with seqeval entity-level precision / recall / F1 (`entity_f1` metric).
"""

from __future__ import annotations

import bisect
import random
from typing import Sequence

import datasets
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from eval_suites.common import Budget, SuiteResult, fine_tune_and_predict, require_examples
from eval_suites.data import NerData, load_span_ner
from eval_suites.metrics import compute_metric
from eval_suites.models import load_for_fine_tuning, load_tokenizer
from eval_suites.suite import NoOptions
from rexbert_core.typed_config import ConfigError, DataError

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


def split_sentences(data: NerData, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded shuffle of sentence indices, cut into train and test (each non-empty)."""
    order = list(range(len(data.tokens)))
    random.Random(seed).shuffle(order)
    if len(order) < 2:
        raise DataError(f"{SUITE}: need at least 2 annotated sentences to split, got {len(order)}")
    n_test = min(len(order) - 1, max(1, round(len(order) * test_fraction)))
    return order[n_test:], order[:n_test]


def first_subword_positions(
    tokenizer: PreTrainedTokenizerBase, words: list[str], max_length: int
) -> tuple[list[int], list[int | None]]:
    """Token ids of the space-joined words, and for each token the index of the word it starts (or None)."""
    text = " ".join(words)
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    encoded = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    word_of_token, seen = [], set()
    for start, end in encoded["offset_mapping"]:
        # the token's last character lies inside its word (a leading space may not)
        word = bisect.bisect_right(starts, end - 1) - 1 if end > start else None
        word_of_token.append(None if word is None or word in seen else word)
        seen.add(word)
    return encoded["input_ids"], word_of_token


def encode(
    tokenizer: PreTrainedTokenizerBase,
    data: NerData,
    indices: list[int],
    label2id: dict[str, int],
    max_length: int,
) -> tuple[datasets.Dataset, list[list[int | None]]]:
    """Token-classification features for the chosen sentences, plus each token's word index."""
    features, alignments = {"input_ids": [], "labels": []}, []
    for index in indices:
        ids, word_of_token = first_subword_positions(tokenizer, data.tokens[index], max_length)
        tags = data.tags[index]
        features["input_ids"].append(ids)
        features["labels"].append([-100 if w is None else label2id[tags[w]] for w in word_of_token])
        alignments.append(word_of_token)
    return datasets.Dataset.from_dict(features), alignments


def word_predictions(
    logits, alignments: list[list[int | None]], n_words: list[int], id2label: dict[int, str]
) -> tuple[list[list[str]], int]:
    """Per-word predicted tags from first-subword logits; words lost to truncation get "O"."""
    predicted, truncated = [], 0
    for row, word_of_token, count in zip(logits, alignments, n_words):
        tags = ["O"] * count
        for position, word in enumerate(word_of_token):
            if word is not None:
                tags[word] = id2label[int(row[position].argmax())]
        truncated += count - sum(w is not None for w in word_of_token)
        predicted.append(tags)
    return predicted, truncated


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
    logits = fine_tune_and_predict(model, train, test, budget, DataCollatorForTokenClassification(tokenizer))
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
