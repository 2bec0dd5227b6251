"""Run suites on checkpoints, write results.json + results.md, and compare several models.

results.json (read by hub_cards to build the model-index):

    {"model": str, "created": iso8601,
     "suites": {SUITE: {"task_type", "dataset": {"name", "type", "split"}, "metrics": {name: float},
                        "main_metric", "n_examples", "seconds", "config", ["skipped"]}}}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from eval_suites.common import Budget, SuiteResult
from eval_suites.esci_classification import EsciClassificationSuite
from eval_suites.esci_similarity import EsciSimilaritySuite
from eval_suites.esci_tokens import EsciTokensSuite
from eval_suites.glue import GlueSuite
from eval_suites.models import model_names
from eval_suites.ner import NerSuite
from eval_suites.suite import Suite
from rexbert_core.safe_outputs import atomic_save_figure, atomic_write_json, atomic_write_text
from rexbert_core.tables import markdown_table
from rexbert_core.typed_config import ConfigError, DataError, from_mapping

__all__ = [
    "ALL_DATA_KEYS",
    "DATA_KEYS",
    "RESULTS_FILENAME",
    "RESULTS_MARKDOWN",
    "RESULTS_PLOT",
    "SUITES",
    "check_suites",
    "comparison_markdown",
    "comparison_plot",
    "comparison_rows",
    "default_budget",
    "evaluate_model",
    "grouped_bar_chart",
    "load_results",
    "results_document",
    "results_markdown",
    "suite_data",
    "suite_options",
    "write_comparison",
    "write_results",
]

logger = logging.getLogger(__name__)

RESULTS_FILENAME, RESULTS_MARKDOWN, RESULTS_PLOT = "results.json", "results.md", "results.png"

# Every suite implements `eval_suites.suite.Suite`; a new one is its module and a line here.
SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        EsciTokensSuite(),
        EsciSimilaritySuite(),
        EsciClassificationSuite(),
        GlueSuite(),
        NerSuite(),
    )
}
DATA_KEYS: dict[str, tuple[str, ...]] = {name: suite.data_keys for name, suite in SUITES.items()}
ALL_DATA_KEYS: tuple[str, ...] = tuple(dict.fromkeys(key for keys in DATA_KEYS.values() for key in keys))


def check_suites(suites: Sequence[str]) -> None:
    """Raise a ValueError listing the available suites when a name is unknown."""
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ConfigError(f"unknown suites {unknown}; available: {list(SUITES)}")


def default_budget(suite: str) -> Budget:
    """The suite's own default budget (small enough for a CPU run)."""
    return SUITES[suite].default_budget


def suite_options(suite: str, settings: Mapping[str, Any] | None = None, where: str | None = None) -> Any:
    """The suite's options from a mapping of their fields (checked: unknown fields, types, values)."""
    return from_mapping(SUITES[suite].options, dict(settings or {}), where or f"options.{suite}")


def suite_data(suite: str, data: Mapping[str, Sequence[str]]) -> list[str]:
    """The data paths a suite reads; a clear error when none were given."""
    for key in DATA_KEYS[suite]:
        if data.get(key):
            return list(data[key])
    keys = " or ".join(f"--data {k}=PATH" for k in DATA_KEYS[suite])
    raise ConfigError(f"suite {suite} needs data: pass {keys}")


def evaluate_model(
    model_path: str,
    suites: Sequence[str],
    data: Mapping[str, Sequence[str]],
    budgets: Mapping[str, Budget] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, SuiteResult]:
    """Run each suite on one checkpoint; the wall time of each goes into its `seconds`. `budgets` and
    `options` (each suite's own options type, see `suite_options`) default to the suite's defaults."""
    check_suites(suites)
    inputs = {suite: suite_data(suite, data) for suite in suites}  # check every suite has data first
    results = {}
    for suite in suites:
        budget = (budgets or {}).get(suite, default_budget(suite))
        logger.info("%s: running %s on %s", model_path, suite, inputs[suite])
        started = time.perf_counter()
        settings = (options or {}).get(suite) or suite_options(suite)
        results[suite] = SUITES[suite].run(str(model_path), inputs[suite], budget, settings)
        results[suite].seconds = time.perf_counter() - started
        logger.info(
            "%s: %s = %.4f (%.1f s)",
            suite,
            results[suite].main_metric,
            results[suite].metrics[results[suite].main_metric],
            results[suite].seconds,
        )
    return results


def results_document(model_path: str, results: Mapping[str, SuiteResult], dataset_note: str = "") -> dict:
    """The results.json content for one model; `dataset_note` is added to every dataset name (e.g. that the
    data are generated sample sets, so that it shows wherever the scores do, cards included)."""
    suites = {suite: result.to_json() for suite, result in results.items()}
    for record in suites.values():
        record["dataset"] = {**record["dataset"], "name": record["dataset"]["name"] + dataset_note}
    return {
        "model": str(model_path),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "suites": suites,
    }


def _number(value: float) -> str:
    return f"{value:.4f}"


def results_markdown(document: dict) -> str:
    """A readable summary: one line per suite, then every metric of every suite."""
    suites = document["suites"]
    summary = [
        [
            suite,
            r["task_type"],
            r["dataset"]["name"],
            r["main_metric"],
            _number(r["metrics"][r["main_metric"]]),
        ]
        + [r["n_examples"], f"{r['seconds']:.1f}"]
        for suite, r in suites.items()
    ]
    header = ["suite", "task", "dataset", "main metric", "score", "examples", "seconds"]
    lines = [f"# Evaluation of `{document['model']}`", "", f"Created {document['created']}.", ""]
    lines.append(markdown_table(header, summary, align="llllrrr"))
    for suite, record in suites.items():
        rows = [[name, _number(value)] for name, value in record["metrics"].items()]
        rows += [[task, f"skipped: {reason}"] for task, reason in (record.get("skipped") or {}).items()]
        lines += ["", f"## {suite}", "", markdown_table(["metric", "value"], rows, align="lr")]
    return "\n".join(lines) + "\n"


def write_results(
    document: dict, output_dir: str | Path, results: Mapping[str, SuiteResult] | None = None
) -> Path:
    """Write results.json and results.md (and predictions/<suite>.json when `results` is given)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for suite, result in (results or {}).items():  # predictions first: results.json marks the end
        atomic_write_text(output_dir / "predictions" / f"{suite}.json", json.dumps(result.predictions) + "\n")
    atomic_write_text(output_dir / RESULTS_MARKDOWN, results_markdown(document))
    return atomic_write_json(output_dir / RESULTS_FILENAME, document, indent=2)


def load_results(path: str | Path) -> dict:
    """Read a results.json (or the folder holding it), checking the fields the comparison needs."""
    path = Path(path)
    path = path / RESULTS_FILENAME if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    if not {"model", "suites"} <= set(document):
        raise DataError(f"{path}: not a results.json (needs 'model' and 'suites')")
    return document


def comparison_rows(documents: Sequence[dict]) -> list[tuple[str, str, list[float | None]]]:
    """(suite, metric, value per model) for every metric any model reports, main metrics first."""
    rows, seen = [], set()
    for main_only in (True, False):
        for document in documents:
            for suite, record in document["suites"].items():
                for metric in [record["main_metric"]] if main_only else record["metrics"]:
                    if (suite, metric) in seen:
                        continue
                    seen.add((suite, metric))
                    values = [d["suites"].get(suite, {}).get("metrics", {}).get(metric) for d in documents]
                    rows.append((suite, metric, values))
    return rows


def comparison_markdown(documents: Sequence[dict]) -> str:
    """One table: a row per (suite, metric), a column per model; the best value in bold."""
    names = model_names([d["model"] for d in documents])
    rows = []
    for suite, metric, values in comparison_rows(documents):
        present = [v for v in values if v is not None]
        best = max(present) if present else None
        cells = [
            "–" if v is None else (f"**{_number(v)}**" if v == best and len(present) > 1 else _number(v))
            for v in values
        ]
        rows.append([suite, metric, *cells])
    table = markdown_table(["suite", "metric", *names], rows, align="ll" + "r" * len(names))
    return "# Model comparison\n\n" + table + "\n"


def comparison_plot(documents: Sequence[dict], path: str | Path) -> Path:
    """Grouped bars of every suite's main metric, one bar per model (PNG, Agg backend)."""
    mains = [
        (suite, metric, values)
        for suite, metric, values in comparison_rows(documents)
        if any(metric == d["suites"].get(suite, {}).get("main_metric") for d in documents)
    ]
    names = model_names([d["model"] for d in documents])
    series = {name: [values[index] or 0.0 for _, _, values in mains] for index, name in enumerate(names)}
    categories = [f"{suite}\n{metric}" for suite, metric, _ in mains]
    return grouped_bar_chart(path, categories, series, "Main metric per suite")


def grouped_bar_chart(
    path: str | Path,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    label_rotation: int = 0,
) -> Path:
    """A PNG of scores: one group of bars per category, one bar (and legend entry) per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(series)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(categories)), 4))
    for index, (label, heights) in enumerate(series.items()):
        positions = [i + index * width for i in range(len(categories))]
        axes.bar(positions, heights, width, label=label)
    axes.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(categories))])
    axes.set_xticklabels(
        categories, fontsize=8, rotation=label_rotation, ha="right" if label_rotation else "center"
    )
    axes.set_ylabel("score")
    axes.set_title(title)
    axes.legend(fontsize=8)
    figure.tight_layout()
    atomic_save_figure(figure, path, dpi=120)
    plt.close(figure)
    return Path(path)


def write_comparison(documents: Sequence[dict], output_dir: str | Path) -> tuple[Path, Path]:
    """Write comparison.md and comparison.png for several results documents."""
    if len(documents) < 1:
        raise ValueError("comparison needs at least one results.json")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    table = output_dir / "comparison.md"
    atomic_write_text(table, comparison_markdown(documents))
    return table, comparison_plot(documents, output_dir / "comparison.png")
