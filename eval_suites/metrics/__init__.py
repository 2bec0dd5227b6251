"""Local `evaluate` metric modules, shipped with the package and loaded by path.

`evaluate.load("<hub name>")` needs the Hub; these modules load offline from their files (each
`<name>.py` here is a metric script for `evaluate.load`, not meant to be imported directly):

    load_metric("masked_token_accuracy")   top-k accuracy of masked-token predictions
    load_metric("correlation")             Pearson + Spearman
    load_metric("classification_f1")       accuracy, micro-F1, macro-F1
    load_metric("glue_score", "cola")      the standard GLUE metric of one task
    load_metric("entity_f1")               seqeval entity-level precision/recall/F1
"""

from __future__ import annotations

import functools
from pathlib import Path

import evaluate

__all__ = ["METRICS_DIR", "METRIC_NAMES", "compute_metric", "load_metric", "metric_path"]

METRICS_DIR = Path(__file__).resolve().parent
METRIC_NAMES = ("masked_token_accuracy", "correlation", "classification_f1", "glue_score", "entity_f1")


def metric_path(name: str) -> Path:
    """The module file of a local metric."""
    if name not in METRIC_NAMES:
        raise KeyError(f"unknown metric {name!r}; local metrics are {list(METRIC_NAMES)}")
    return METRICS_DIR / f"{name}.py"


@functools.lru_cache(maxsize=None)
def load_metric(name: str, config_name: str | None = None) -> evaluate.EvaluationModule:
    """Load a local metric module with `evaluate.load` by its path (works offline); cached per process."""
    return evaluate.load(str(metric_path(name)), config_name)


def compute_metric(name: str, predictions, references, config_name: str | None = None, **kwargs) -> dict:
    """Load a local metric and compute it on one batch of predictions and references."""
    return load_metric(name, config_name).compute(predictions=predictions, references=references, **kwargs)
