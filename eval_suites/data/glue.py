"""GLUE: one task's train and validation sets from the original folder layout (TSVs) or a Hub id."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import datasets
import pandas as pd

from .tables import DataFormatError, first_column, is_hub_id

__all__ = ["GLUE_TASKS", "GlueData", "GlueTask", "load_glue_task"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task: where its files live and how its columns and labels are spelled."""

    name: str  # the Hub config name (cola, sst2, ...)
    folder: str  # the folder name in the original GLUE download
    text_columns: tuple[tuple[str, ...], ...]  # candidate spellings of text_a, text_b
    label_columns: tuple[str, ...]
    label_names: tuple[str, ...] = ()  # text labels in the TSVs, in Hub id order
    dev_file: str = "dev.tsv"
    hub_validation: str = "validation"
    headerless_columns: tuple[str, ...] = ()

    @property
    def is_regression(self) -> bool:
        return self.name == "stsb"

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else max(2, len(self.label_names))


GLUE_TASKS = {
    task.name: task
    for task in (
        GlueTask(
            "cola",
            "CoLA",
            (("sentence",),),
            ("label",),
            headerless_columns=("source", "label", "orig_label", "sentence"),
        ),
        GlueTask("sst2", "SST-2", (("sentence",),), ("label",)),
        GlueTask(
            "mrpc", "MRPC", (("#1 String", "sentence1"), ("#2 String", "sentence2")), ("Quality", "label")
        ),
        GlueTask("stsb", "STS-B", (("sentence1",), ("sentence2",)), ("score", "label")),
        GlueTask("qqp", "QQP", (("question1",), ("question2",)), ("is_duplicate", "label")),
        GlueTask(
            "mnli",
            "MNLI",
            (("sentence1", "premise"), ("sentence2", "hypothesis")),
            ("gold_label", "label"),
            ("entailment", "neutral", "contradiction"),
            "dev_matched.tsv",
            "validation_matched",
        ),
        GlueTask(
            "qnli", "QNLI", (("question",), ("sentence",)), ("label",), ("entailment", "not_entailment")
        ),
        GlueTask(
            "rte", "RTE", (("sentence1",), ("sentence2",)), ("label",), ("entailment", "not_entailment")
        ),
    )
}


def _normalise_glue_frame(frame: pd.DataFrame, task: GlueTask, source: str) -> datasets.Dataset:
    """Columns text_a, (text_b), label with Hub label ids (or float scores for STS-B)."""
    columns = {}
    for position, candidates in zip(("text_a", "text_b"), task.text_columns):
        found = first_column(frame, candidates)
        if found is None:
            raise DataFormatError(
                f"{source}: GLUE {task.name} needs a column {' or '.join(candidates)}; "
                f"found {list(frame.columns)}"
            )
        columns[position] = frame[found].astype(str).tolist()
    label_col = first_column(frame, task.label_columns)
    if label_col is None:
        raise DataFormatError(
            f"{source}: GLUE {task.name} has no label column ({'/'.join(task.label_columns)})"
        )
    columns["label"] = _glue_labels(frame[label_col], task, source)
    return datasets.Dataset.from_dict(columns)


def _glue_labels(values: pd.Series, task: GlueTask, source: str) -> list:
    if task.is_regression:
        return pd.to_numeric(values).astype(float).tolist()
    text = values.astype(str).str.strip()
    if task.label_names and text.isin(task.label_names).all():
        return text.map({name: i for i, name in enumerate(task.label_names)}).astype(int).tolist()
    numeric = pd.to_numeric(text, errors="coerce")
    valid = numeric.isin(range(task.num_labels))
    if not valid.all():
        bad = sorted(set(text[~valid]))[:10]
        raise DataFormatError(f"{source}: unknown GLUE {task.name} labels {bad} (unlabeled test split?)")
    return numeric.astype(int).tolist()


def _read_glue_tsv(path: Path, task: GlueTask) -> tuple[pd.DataFrame, int]:
    """A GLUE TSV as strings, and the number of malformed lines skipped (wrong field count, as in
    some QQP/MNLI releases). The fast C parser is tried first."""
    options = {
        "sep": "\t",
        "quoting": csv.QUOTE_NONE,
        "encoding": "utf-8-sig",
        "keep_default_na": False,
        "dtype": str,
    }
    if task.headerless_columns:
        options.update(header=None, names=list(task.headerless_columns))
    try:
        return pd.read_csv(path, **options), 0
    except pd.errors.ParserError:
        malformed: list[list[str]] = []
        frame = pd.read_csv(path, engine="python", on_bad_lines=malformed.append, **options)
        logger.warning("%s: skipped %d malformed lines", path, len(malformed))
        return frame, len(malformed)


def _glue_task_folder(root: Path, task: GlueTask) -> Path | None:
    wanted = {task.folder.lower(), task.name.lower()}
    return next((p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in wanted), None)


@dataclass
class GlueData:
    """Train and validation sets of one task; `train_source` says where the train set came from."""

    train: datasets.Dataset
    validation: datasets.Dataset
    train_source: str
    malformed_lines: int = 0


def load_glue_task(spec: str, task_name: str, seed: int = 0) -> GlueData | str:
    """Load one GLUE task from a local GLUE folder or a Hub id (e.g. `nyu-mll/glue`).

    Returns the data, or a string saying why the task is skipped (no folder, no files). A task
    with a dev set but no train set (QNLI here) is split: half of the dev set, chosen with `seed`,
    becomes the train set and the other half the validation set (`train_source="dev-split"`).
    """
    task = GLUE_TASKS[task_name]
    if is_hub_id(spec):
        try:
            splits = datasets.load_dataset(spec, task.name)
        except Exception as error:  # unreachable Hub, missing config: the task is skipped, with why
            return f"could not load {spec}/{task.name}: {type(error).__name__}: {str(error)[:200]}"
        columns = {
            "train": splits["train"].to_pandas(),
            "validation": splits[task.hub_validation].to_pandas(),
        }
        return GlueData(
            *(
                _normalise_glue_frame(columns[s], task, f"{spec}/{task.name}/{s}")
                for s in ("train", "validation")
            ),
            train_source="train",
        )
    root = Path(spec)
    if not root.is_dir():
        raise DataFormatError(
            f"{spec}: GLUE data must be a folder of task folders (CoLA, SST-2, ...) or a Hub id"
        )
    folder = _glue_task_folder(root, task)
    if folder is None:
        return "no data"
    dev_path = folder / task.dev_file
    if not dev_path.is_file():
        return f"no {task.dev_file} in {folder}"
    dev_frame, malformed = _read_glue_tsv(dev_path, task)
    validation = _normalise_glue_frame(dev_frame, task, str(dev_path))
    train_path = next(
        (p for p in (folder / "train.tsv", *sorted(folder.glob("*train*.tsv"))) if p.is_file()), None
    )
    if train_path is not None:
        train_frame, malformed_train = _read_glue_tsv(train_path, task)
        train = _normalise_glue_frame(train_frame, task, str(train_path))
        return GlueData(train, validation, train_path.name, malformed + malformed_train)
    halves = validation.train_test_split(test_size=0.5, seed=seed)
    return GlueData(halves["train"], halves["test"], "dev-split", malformed)
