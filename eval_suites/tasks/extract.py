"""`extract`: attribute / entity extraction as token classification, trained with the `Trainer`.

The data is the span-annotated NER format (`sentences` + `spans` of character `start`, `end`, `type`):
sentences are split on whitespace and the spans become BIO word tags (`data.spans_to_bio`). Words are
aligned to subword tokens by character offsets (byte-level BPE and WordPiece alike): a word's first subword
carries its label and prediction, the rest are ignored (-100). Inputs are kept whole up to the model's
context (8,192 tokens for a RexBERT or ModernBERT encoder), so a long product description is labelled end to
end; words beyond it are predicted "O" and counted (`truncated_words`). Sentences are split into train and
test by a seeded shuffle (the format has no split). Scored with seqeval's entity-level F1 next to a
gazetteer baseline on the same split: every entity string of the training sentences, matched longest first.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Sequence

import datasets
import numpy as np
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase, Trainer

from eval_suites.data import NerData, load_span_ner
from eval_suites.metrics import compute_metric
from rexbert_core.typed_config import ConfigError, DataError

from .config import ExtractConfig, TrainSettings
from .outputs import TaskOutput
from .training import model_context, train_with_trainer

__all__ = [
    "encode",
    "first_subword_positions",
    "gazetteer_baseline",
    "run",
    "split_sentences",
    "train_token_classifier",
    "word_predictions",
]


def split_sentences(data: NerData, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded shuffle of sentence indices, cut into train and test (each non-empty)."""
    order = list(range(len(data.tokens)))
    random.Random(seed).shuffle(order)
    if len(order) < 2:
        raise DataError(f"extract: need at least 2 annotated sentences to split, got {len(order)}")
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


def gazetteer_baseline(
    train_tokens: list[list[str]], train_tags: list[list[str]], test_tokens: list[list[str]]
) -> list[list[str]]:
    """BIO tags from a dictionary of the training entities (lower-cased word sequences -> their most frequent
    type), matched greedily longest first, left to right."""
    from collections import Counter, defaultdict

    types: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for words, tags in zip(train_tokens, train_tags):
        start = None
        for position, tag in enumerate([*tags, "O"]):
            if start is not None and not tag.startswith("I-"):
                types[tuple(w.lower() for w in words[start:position])][tags[start][2:]] += 1
                start = None
            if tag.startswith("B-"):
                start = position
    entries = {words: counts.most_common(1)[0][0] for words, counts in types.items()}
    longest = max((len(words) for words in entries), default=0)
    predicted = []
    for words in test_tokens:
        lowered, tags, position = [w.lower() for w in words], ["O"] * len(words), 0
        while position < len(words):
            for length in range(min(longest, len(words) - position), 0, -1):
                kind = entries.get(tuple(lowered[position : position + length]))
                if kind:
                    tags[position : position + length] = [f"B-{kind}"] + [f"I-{kind}"] * (length - 1)
                    position += length
                    break
            else:
                position += 1
        predicted.append(tags)
    return predicted


def train_token_classifier(
    model,
    tokenizer,
    train: datasets.Dataset,
    settings: TrainSettings,
    output_dir: str,
    checkpoint: str | None = None,
) -> Trainer:
    """Fine-tune `model` in place with the `Trainer`; returns the trainer (for `predict`)."""
    return train_with_trainer(
        model, train, DataCollatorForTokenClassification(tokenizer), settings, output_dir, checkpoint
    )


def run(model_path: str, data: Sequence[str], config: ExtractConfig, output: TaskOutput) -> dict:
    """Train, ship and evaluate (see the module docstring); returns `results.json`'s content."""
    from eval_suites.models import load_for_fine_tuning, load_tokenizer

    if len(data) != 1:
        raise ConfigError(f"extract: give one span-annotated jsonl file, got {list(map(str, data))}")
    ner = load_span_ner(data[0])
    train_idx, test_idx = split_sentences(ner, config.data.test_fraction, config.data.seed)
    train_idx = train_idx[: config.data.max_train_queries] if config.data.max_train_queries else train_idx
    test_idx = test_idx[: config.data.max_test_queries] if config.data.max_test_queries else test_idx
    id2label = dict(enumerate(ner.label_names))
    label2id = {label: i for i, label in id2label.items()}
    tokenizer = load_tokenizer(model_path)
    model = load_for_fine_tuning(model_path, "token", len(id2label), id2label)
    length = config.max_seq_length or model_context(model.config)
    train, _ = encode(tokenizer, ner, train_idx, label2id, length)
    test, alignments = encode(tokenizer, ner, test_idx, label2id, length)
    started = time.perf_counter()
    trainer = train_token_classifier(
        model, tokenizer, train, config.train, str(output.checkpoints), output.last_checkpoint()
    )
    seconds = time.perf_counter() - started
    logits = trainer.predict(test).predictions
    gold = [ner.tags[i] for i in test_idx]
    predicted, truncated = word_predictions(np.asarray(logits), alignments, [len(t) for t in gold], id2label)
    gazetteer = gazetteer_baseline(
        [ner.tokens[i] for i in train_idx],
        [ner.tags[i] for i in train_idx],
        [ner.tokens[i] for i in test_idx],
    )
    scores = {
        "model": compute_metric("entity_f1", predicted, gold),
        "gazetteer": compute_metric("entity_f1", gazetteer, gold),
    }
    trainer.save_model(str(output.staging()))
    tokenizer.save_pretrained(str(output.root / "model.partial"))
    results = {
        **scores,
        "task": "extract",
        "entity_types": ner.entity_types,
        "data": {"train_sentences": len(train_idx), "test_sentences": len(test_idx), "span_issues": ner.span_issues,
                 "truncated_words": truncated, "max_length": length},
        "training": {"seconds": round(seconds, 1)},
    }  # fmt: skip
    output.ship({"task": "extract", "base_model": str(model_path), "results": results})
    rows = "\n".join(
        f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | {s['f1']:.4f} |" for name, s in scores.items()
    )
    output.write_results(
        results,
        f"# Extraction (entity spans)\n\n| method | precision | recall | F1 |\n|---|---:|---:|---:|\n{rows}\n",
    )
    return results
