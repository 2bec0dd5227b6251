"""The part of a model card that a `rexbert finetune` model adds: the task, the data, every method's
metrics next to the baselines, the `model-index` entries and how to use it.

It reads `finetune.json` in the model directory (written there by `rexbert finetune`: the task, the base
model and `results.json`'s content), so `rexbert push model OUTPUT/model` publishes a card that says what the
model is for and how it compares, without this package knowing the task code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

from hub_cards.common import read_json

__all__ = ["FINETUNE_FILENAME", "TASKS", "finetune_eval_results", "finetune_section", "read_finetune"]

FINETUNE_FILENAME = "finetune.json"

# task -> (pipeline tag, what the model is, the method rows that are this model, the main metric)
TASKS: dict[str, dict[str, Any]] = {
    "retrieval": {
        "pipeline_tag": "sentence-similarity",
        "what": "a bi-encoder for product search: queries and products embedded apart, ranked by cosine",
        "model_rows": ("dense", "hybrid"),
        "metrics": ("ndcg@10", "mrr@10", "recall@100"),
    },
    "rerank": {
        "pipeline_tag": "text-ranking",
        "what": "a cross-encoder that scores (query, product) pairs, to reorder a first stage's top results",
        "model_rows": ("rerank@bm25", "rerank@dense"),
        "metrics": ("ndcg@10", "mrr@10", "recall@100"),
    },
    "classify": {
        "pipeline_tag": "text-classification",
        "what": "a sequence classifier",
        "model_rows": ("model",),
        "metrics": ("micro_f1", "macro_f1"),
    },
    "extract": {
        "pipeline_tag": "token-classification",
        "what": "an attribute and entity extractor (token classification, BIO tags)",
        "model_rows": ("model",),
        "metrics": ("precision", "recall", "f1"),
    },
}


def read_finetune(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / FINETUNE_FILENAME
    return read_json(path, "fine-tune record") if path.is_file() else None


def _method_rows(record: dict) -> list[dict[str, Any]]:
    task = TASKS[record["task"]]
    results = record.get("results", {})
    rows = []
    for method, metrics in results.items():
        if isinstance(metrics, dict) and all(m in metrics for m in task["metrics"]):
            rows.append(
                {
                    "method": method,
                    "this_model": method in task["model_rows"],
                    "cells": [f"{metrics[m]:.4f}" for m in task["metrics"]],
                }
            )
    return rows


def finetune_section(record: dict) -> dict[str, Any]:
    """What the card template shows for a fine-tuned model."""
    task = TASKS[record["task"]]
    results = record.get("results", {})
    data = results.get("data", {})
    return {
        "task": record["task"],
        "what": task["what"] + (f" ({results['variant']})" if results.get("variant") else ""),
        "metrics": list(task["metrics"]),
        "rows": _method_rows(record),
        "product_template": results.get("product_template"),
        "data": ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in data.items() if isinstance(v, (int, float, str))
        ),
        "base_model": Path(str(record.get("base_model", ""))).name or None,
        "classes": results.get("classes") or results.get("entity_types"),
        "training": results.get("training", {}),
    }


def finetune_eval_results(record: dict, dataset_name: str = "ESCI (held-out queries)") -> list[EvalResult]:
    """`model-index` entries of the model's own rows (baselines are in the card's table, not the index)."""
    task = TASKS[record["task"]]
    results = record.get("results", {})
    name = (
        dataset_name
        if record["task"] in ("retrieval", "rerank") or results.get("variant") != "table"
        else "held-out split"
    )
    if record["task"] == "extract":
        name = "span-annotated NER (held-out sentences)"
    entries = []
    for method in task["model_rows"]:
        for metric in task["metrics"]:
            value = results.get(method, {}).get(metric)
            if isinstance(value, (int, float)):
                entries.append(
                    EvalResult(
                        task_type=task["pipeline_tag"],
                        dataset_type="esci" if record["task"] != "extract" else "span-ner",
                        dataset_name=name,
                        metric_type=metric,
                        metric_name=f"{method} {metric}" if len(task["model_rows"]) > 1 else metric,
                        metric_value=float(value),
                    )
                )
    return entries
