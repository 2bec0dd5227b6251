"""GLUE: fine-tune on every task that has data and report the standard metric per task.

Per task, a fresh sequence-classification head (a regression head for STS-B) is fine-tuned with
the `Trainer` on the (capped) train set and scored on the (capped) dev set with the `glue_score`
metric. A task's score is the mean of its metrics (MRPC/QQP: accuracy and F1; STS-B: Pearson and
Spearman), and `average` is the mean over the tasks that ran, as on the GLUE leaderboard. Tasks
without data are listed under `skipped` with the reason. A task with a dev set but no train set
(QNLI in the shared data) trains on a seeded half of the dev set and is scored on the other half;
its `train_source` says "dev-split".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from eval_suites.common import (
    Budget,
    SuiteResult,
    fine_tune_sequence_classifier,
    require_examples,
    sample_dataset,
)
from eval_suites.data import GLUE_TASKS, GlueData, load_glue_task
from eval_suites.metrics import compute_metric
from rexbert_core.typed_config import ConfigError, DataError, check_choice

__all__ = [
    "DATA_KEYS",
    "DEFAULT_BUDGET",
    "GlueOptions",
    "GlueSuite",
    "SUITE",
    "run",
    "run_task",
]

SUITE = "glue"
DATA_KEYS = ("glue",)  # the --data keys that feed this suite, in order of preference
DEFAULT_BUDGET = Budget(
    max_train_examples=1000,
    max_eval_examples=500,
    epochs=1,
    batch_size=16,
    learning_rate=5e-5,
    max_seq_length=128,
)
logger = logging.getLogger(__name__)


def run_task(
    model_path: str, task_name: str, data: GlueData, budget: Budget
) -> tuple[dict[str, float], dict, int]:
    """Fine-tune and score one task: its metrics, raw predictions, and the number of dev examples."""
    task = GLUE_TASKS[task_name]
    train = sample_dataset(data.train, budget.max_train_examples, budget.seed)
    validation = sample_dataset(data.validation, budget.max_eval_examples, budget.seed)
    require_examples(f"{SUITE}/{task_name}", "train", len(train))
    require_examples(f"{SUITE}/{task_name}", "validation", len(validation))
    id2label = dict(enumerate(task.label_names)) if task.label_names else None
    logits = fine_tune_sequence_classifier(model_path, train, validation, budget, task.num_labels, id2label)
    predicted = logits.reshape(-1).tolist() if task.is_regression else logits.argmax(-1).tolist()
    gold = list(validation["label"])
    metrics = compute_metric("glue_score", predicted, gold, config_name=task.name)
    return metrics, {"predictions": predicted, "references": gold}, len(validation)


def run(
    model_path: str,
    data: Sequence[str],
    budget: Budget = DEFAULT_BUDGET,
    tasks: Sequence[str] = tuple(GLUE_TASKS),
) -> SuiteResult:
    """Run every GLUE task found under `data[0]` (a GLUE folder or a Hub id such as nyu-mll/glue)."""
    if len(data) != 1:
        raise ConfigError(f"{SUITE}: give exactly one GLUE folder or Hub id, got {list(data)}")
    metrics, predictions, skipped, sources, malformed, task_scores = {}, {}, {}, {}, {}, {}
    n_examples = 0
    for task_name in tasks:
        if task_name not in GLUE_TASKS:
            raise ConfigError(f"unknown GLUE task {task_name!r}; expected some of {list(GLUE_TASKS)}")
        task_data = load_glue_task(str(data[0]), task_name, seed=budget.seed)
        if isinstance(task_data, str):
            skipped[task_name] = task_data
            continue
        logger.info(
            "GLUE %s: %d train / %d dev examples", task_name, len(task_data.train), len(task_data.validation)
        )
        task_metrics, predictions[task_name], count = run_task(model_path, task_name, task_data, budget)
        metrics.update({f"{task_name}/{name}": value for name, value in task_metrics.items()})
        task_scores[task_name] = float(np.mean(list(task_metrics.values())))
        sources[task_name] = task_data.train_source
        malformed[task_name] = task_data.malformed_lines
        n_examples += count
    if not task_scores:
        raise DataError(f"{SUITE}: no GLUE task has data under {data[0]} ({skipped})")
    metrics.update({f"{task}/score": score for task, score in task_scores.items()})
    metrics["average"] = float(np.mean(list(task_scores.values())))
    return SuiteResult(
        task_type="text-classification",
        dataset={"name": "GLUE", "type": "nyu-mll/glue", "split": "validation"},
        metrics=metrics,
        main_metric="average",
        n_examples=n_examples,
        config={
            "data": str(data[0]),
            "tasks": list(task_scores),
            "train_source": sources,
            "malformed_lines": malformed,
            "max_train_examples": budget.max_train_examples,
            "max_eval_examples": budget.max_eval_examples,
            **budget.fine_tune_config(),
        },
        skipped=skipped,
        predictions=predictions,
    )


@dataclass(frozen=True)
class GlueOptions:
    """`tasks`: the GLUE tasks to run (default: all eight)."""

    tasks: list[str] = field(default_factory=lambda: list(GLUE_TASKS))

    def check(self, where: str) -> None:
        for task in self.tasks:
            check_choice(f"{where}.tasks", task, tuple(GLUE_TASKS))


class GlueSuite:
    """This module as a `Suite` (see `eval_suites.suite`)."""

    name, data_keys, default_budget, options = SUITE, DATA_KEYS, DEFAULT_BUDGET, GlueOptions

    def run(self, model_path: str, data: Sequence[str], budget: Budget, options: GlueOptions) -> SuiteResult:
        return run(model_path, data, budget, tasks=options.tasks)
