"""`classify`: a sequence classifier trained with the `Trainer`, on ESCI or on any text/label table.

Variants: `esci` (4 classes E/S/C/I over the pair (query, product text): ESCI task 2), `substitute` (ESCI
task 3: Substitute or not) and `table` (`text_column`, optional `text_pair_column`, `label_column`, e.g. a
product category; split by a seeded shuffle). Scored with micro- and macro-F1 over every class (a class never
predicted counts as F1 0) next to a lexical baseline on the same split: logistic regression on TF-IDF word
and bigram features of the same text (scikit-learn), the classifier a team would try first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import datasets
import numpy as np
import pandas as pd
from transformers import DataCollatorWithPadding, Trainer

from eval_suites.data import read_table
from eval_suites.data.tables import DataFormatError
from eval_suites.metrics import compute_metric
from rexbert_core.safe_outputs import atomic_save_figure

from .config import ClassifyConfig, TrainSettings
from .data import esci_splits
from .outputs import TaskOutput
from .training import model_context, train_with_trainer

__all__ = ["labelled_frames", "lexical_baseline", "run", "train_classifier"]

ESCI_CLASSES = ("E", "S", "C", "I")


def labelled_frames(
    data: Sequence[str], config: ClassifyConfig
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(train, test, class names): frames with `text`, optional `text_pair`, and `label` (a class index)."""
    if config.variant == "table":
        return _table_frames(data, config)
    _, train, test = esci_splits(data, config.data)
    classes = list(ESCI_CLASSES) if config.variant == "esci" else ["not substitute", "substitute"]

    def frame(split) -> pd.DataFrame:
        texts = split.text_of()
        judged = split.judgments
        labels = judged["esci_label"].map({c: i for i, c in enumerate(ESCI_CLASSES)})
        if config.variant == "substitute":
            labels = (judged["esci_label"] == "S").astype(int)
        return pd.DataFrame(
            {"text": judged["query"], "text_pair": judged["product_id"].map(texts), "label": labels}
        )

    return frame(train), frame(test), classes


def _table_frames(
    data: Sequence[str], config: ClassifyConfig
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    frames = [read_table(spec) for spec in data]
    table = pd.concat(frames, ignore_index=True)
    wanted = [config.text_column, config.label_column] + (
        [config.text_pair_column] if config.text_pair_column else []
    )
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise DataFormatError(
            f"{list(map(str, data))}: no column {missing}; the table has {list(table.columns)}"
        )
    table = table.dropna(subset=wanted)
    classes = sorted(table[config.label_column].astype(str).unique())
    if len(classes) < 2:
        raise DataFormatError(
            f"{list(map(str, data))}: column {config.label_column!r} has {len(classes)} class(es); need 2 or more"
        )
    frame = pd.DataFrame(
        {
            "text": table[config.text_column].astype(str),
            "label": table[config.label_column].astype(str).map({c: i for i, c in enumerate(classes)}),
        }
    )
    if config.text_pair_column:
        frame["text_pair"] = table[config.text_pair_column].astype(str).to_numpy()
    order = np.random.default_rng(config.data.seed).permutation(len(frame))
    n_test = max(1, round(len(frame) * config.data.test_fraction))
    test, train = frame.iloc[order[:n_test]], frame.iloc[order[n_test:]]
    train = train.head(config.data.max_train_queries) if config.data.max_train_queries else train
    test = test.head(config.data.max_test_queries) if config.data.max_test_queries else test
    return train.reset_index(drop=True), test.reset_index(drop=True), classes


def lexical_baseline(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> list[int]:
    """Predictions of TF-IDF (words and bigrams) + logistic regression trained on `train`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def joined(frame: pd.DataFrame) -> list[str]:
        pair = frame["text_pair"] if "text_pair" in frame.columns else ""
        return (
            (frame["text"] + " [SEP] " + pair).tolist()
            if "text_pair" in frame.columns
            else frame["text"].tolist()
        )

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    features = vectorizer.fit_transform(joined(train))
    if train["label"].nunique() < 2:
        return [int(train["label"].iloc[0])] * len(test)
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(features, train["label"])
    return model.predict(vectorizer.transform(joined(test))).tolist()


def _encode(tokenizer, frame: pd.DataFrame, max_length: int) -> datasets.Dataset:
    pair = "text_pair" in frame.columns
    encoded = tokenizer(
        frame["text"].tolist(),
        frame["text_pair"].tolist() if pair else None,
        truncation=True,
        max_length=max_length,
    )
    return datasets.Dataset.from_dict({**encoded, "labels": frame["label"].astype(int).tolist()})


def train_classifier(
    model,
    tokenizer,
    train: datasets.Dataset,
    settings: TrainSettings,
    output_dir: str,
    checkpoint: str | None = None,
) -> Trainer:
    """Fine-tune `model` in place with the `Trainer`; returns the trainer (for `predict`)."""
    return train_with_trainer(
        model, train, DataCollatorWithPadding(tokenizer), settings, output_dir, checkpoint
    )


def run(model_path: str, data: Sequence[str], config: ClassifyConfig, output: TaskOutput) -> dict:
    """Train, ship and evaluate (see the module docstring); returns `results.json`'s content."""
    from eval_suites.models import load_for_fine_tuning, load_tokenizer

    train, test, classes = labelled_frames(data, config)
    for name, frame in (("train", train), ("test", test)):
        if frame.empty:
            raise DataFormatError(f"{list(map(str, data))}: the {name} split is empty")
    tokenizer = load_tokenizer(model_path)
    id2label = dict(enumerate(classes))
    model = load_for_fine_tuning(model_path, "sequence", len(classes), id2label)
    length = config.max_seq_length or model_context(model.config)
    started = time.perf_counter()
    trainer = train_classifier(
        model,
        tokenizer,
        _encode(tokenizer, train, length),
        config.train,
        str(output.checkpoints),
        output.last_checkpoint(),
    )
    seconds = time.perf_counter() - started
    logits = trainer.predict(_encode(tokenizer, test, length)).predictions
    predicted = np.asarray(logits[0] if isinstance(logits, tuple) else logits).argmax(-1).tolist()
    gold = test["label"].astype(int).tolist()
    labels = list(range(len(classes)))
    scores = {
        "model": compute_metric("classification_f1", predicted, gold, labels=labels),
        "tfidf+logreg": compute_metric(
            "classification_f1", lexical_baseline(train, test, config.train.seed), gold, labels=labels
        ),
    }
    trainer.save_model(str(output.staging()))
    tokenizer.save_pretrained(str(output.root / "model.partial"))
    results = {
        **scores,
        "task": "classify",
        "variant": config.variant,
        "classes": classes,
        "data": {"train_examples": len(train), "test_examples": len(test)},
        "training": {"seconds": round(seconds, 1)},
    }
    if config.variant != "table":
        results["product_template"] = config.data.product_template
    output.ship({"task": "classify", "base_model": str(model_path), "results": results})
    _plot(scores, output.root / "results.png", config.variant)
    rows = "\n".join(f"| {name} | {s['micro_f1']:.4f} | {s['macro_f1']:.4f} |" for name, s in scores.items())
    output.write_results(
        results,
        f"# Classification ({config.variant})\n\n| method | micro-F1 | macro-F1 |\n|---|---:|---:|\n{rows}\n",
    )
    return results


def _plot(scores: dict[str, dict[str, float]], path, variant: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 3.2))
    names = list(scores)
    for offset, metric in enumerate(("micro_f1", "macro_f1")):
        axes.bar(
            [i + offset * 0.4 for i in range(len(names))],
            [scores[n][metric] for n in names],
            0.4,
            label=metric,
        )
    axes.set_xticks([i + 0.2 for i in range(len(names))])
    axes.set_xticklabels(names, fontsize=8)
    axes.set_ylim(0, 1)
    axes.set_title(f"classification ({variant}), held-out split", fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    atomic_save_figure(figure, path, dpi=110)
    plt.close(figure)
