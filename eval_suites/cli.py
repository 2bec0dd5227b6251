"""`rexbert eval`: run benchmark suites on one or more checkpoints, or compare saved results.

    rexbert eval --model runs/demo/model --suite esci-tokens,esci-similarity,glue,ner \\
        --data esci=examples.parquet,products.parquet --data glue=data/glue \\
        --data ner=lenovo_ner_test.jsonl.gz --output runs/demo/eval
    rexbert eval --model A --model B --suite glue --data glue=data/glue --output runs/cmp
    rexbert eval compare runs/a/eval runs/b/eval --output runs/cmp

`--data KEY=PATH[,PATH...]` keys: esci (ESCI pairs + product files, or a Hub id such as
tasksource/esci), products (product texts for esci-tokens; defaults to the esci files), glue (a
GLUE folder or a Hub id such as nyu-mll/glue), ner (span-annotated jsonl). A bare PATH is
assigned by its shape: a folder of GLUE task folders -> glue, *.jsonl(.gz) -> ner, else esci.
Budget flags apply to every suite; `--budget SUITE.FIELD=VALUE` sets one suite's field.
"""

from __future__ import annotations

import os

__all__ = [
    "BUDGET_FLAGS",
    "add_arguments",
    "guess_data_key",
    "main",
    "parse_budgets",
    "parse_data",
    "run_models",
]

# Measured here: on a loaded 2-core machine, OpenMP's default spin-waiting makes 2-thread torch
# 25-40x slower than 1 thread; passive waiting removes that. Must be set before torch starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from eval_suites import runner  # noqa: E402
from eval_suites.common import Budget  # noqa: E402
from eval_suites.data import GLUE_TASKS  # noqa: E402
from eval_suites.models import check_model_path, model_names  # noqa: E402
from rexbert_core.typed_config import ConfigError, UsageError, did_you_mean  # noqa: E402

BUDGET_FLAGS = {
    "max_train_examples": int,
    "max_eval_examples": int,
    "epochs": float,
    "batch_size": int,
    "learning_rate": float,
    "max_seq_length": int,
    "seed": int,
    "test_fraction": float,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `rexbert eval` and its `compare` verb."""
    verbs = parser.add_subparsers(dest="verb", metavar="[compare]")
    compare = verbs.add_parser("compare", help="compare saved results.json files (Markdown table + PNG)")
    compare.add_argument("results", nargs="+", help="results.json files or the folders holding them")
    compare.add_argument("--output", required=True, help="folder for comparison.md and comparison.png")
    parser.add_argument("--model", action="append", help="checkpoint directory or Hub id (repeat to compare)")
    parser.add_argument(
        "--suite",
        default=",".join(runner.SUITES),
        help=f"comma-separated suites (default: all): {', '.join(runner.SUITES)}",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="KEY=PATH[,PATH]",
        help="data for the suites: esci=, products=, glue=, ner= (repeatable)",
    )
    parser.add_argument("--output", help="output folder (one sub-folder per model when several)")
    parser.add_argument("--glue-tasks", default=",".join(GLUE_TASKS), help="GLUE tasks to run (default: all)")
    parser.add_argument("--save-predictions", action="store_true", help="also write predictions/<suite>.json")
    for name, kind in BUDGET_FLAGS.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"budget override for every suite ({name})",
        )
    parser.add_argument(
        "--budget",
        action="append",
        default=[],
        metavar="SUITE.FIELD=VALUE",
        help="budget override for one suite, e.g. glue.max_train_examples=200",
    )


def guess_data_key(path: str) -> str:
    """Which suite input a bare --data PATH is, from its shape."""
    candidate = Path(path)
    if candidate.is_dir() and any(
        p.is_dir() and p.name.lower() in {t.folder.lower() for t in GLUE_TASKS.values()}
        for p in candidate.iterdir()
    ):
        return "glue"
    if candidate.name.endswith((".jsonl", ".jsonl.gz")):
        return "ner"
    return "esci"


def parse_data(values: list[str]) -> dict[str, list[str]]:
    """--data values -> {key: [paths]}."""
    data: dict[str, list[str]] = {}
    for value in values:
        key, _, paths = value.partition("=") if "=" in value else (None, "", value)
        key = key or guess_data_key(paths.split(",")[0])
        if key not in runner.ALL_DATA_KEYS:
            keys = ", ".join(f"{k}=" for k in runner.ALL_DATA_KEYS)
            raise ConfigError(
                f"--data {value}: unknown key {key!r}{did_you_mean(str(key), list(runner.ALL_DATA_KEYS))}; use {keys}"
            )
        data.setdefault(key, []).extend(p for p in paths.split(",") if p)
    return data


def parse_budgets(args: argparse.Namespace, suites: list[str]) -> dict[str, Budget]:
    """Each suite's default budget with the global flags, then the per-suite --budget entries, applied."""
    common = {name: getattr(args, name) for name in BUDGET_FLAGS}
    budgets = {suite: runner.default_budget(suite).override(**common) for suite in suites}
    for entry in args.budget:
        target, _, value = entry.partition("=")
        suite, _, field = target.partition(".")
        if suite not in budgets or field not in BUDGET_FLAGS or not value:
            raise ConfigError(
                f"--budget {entry}: expected SUITE.FIELD=VALUE with SUITE in {suites} and FIELD in "
                f"{list(BUDGET_FLAGS)}"
            )
        parsed = None if value.lower() == "none" else BUDGET_FLAGS[field](value)
        budgets[suite] = dataclasses.replace(budgets[suite], **{field: parsed})
    return budgets


def run_models(args: argparse.Namespace) -> list[dict]:
    """Evaluate every --model and write its results; returns the results documents."""
    for model in args.model:
        check_model_path(model)
    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    runner.check_suites(suites)
    data, budgets = parse_data(args.data), parse_budgets(args, suites)
    tasks = [t.strip() for t in args.glue_tasks.split(",") if t.strip()]
    options = (
        {"glue": runner.suite_options("glue", {"tasks": tasks}, "--glue-tasks")} if "glue" in suites else {}
    )
    documents, names = [], model_names(args.model)
    for model, name in zip(args.model, names):
        results = runner.evaluate_model(model, suites, data, budgets, options)
        document = runner.results_document(model, results)
        folder = Path(args.output) / name if len(args.model) > 1 else Path(args.output)
        path = runner.write_results(document, folder, results if args.save_predictions else None)
        print(f"{model}: wrote {path}")
        print(runner.results_markdown(document))
        documents.append(document)
    return documents


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.verb == "compare":
        documents = [runner.load_results(path) for path in args.results]
    else:
        if not args.model or not args.output:
            raise UsageError(
                "rexbert eval: --model and --output are required (or use `rexbert eval compare`)"
            )
        documents = run_models(args)
        if len(documents) < 2:
            return 0
    table, plot = runner.write_comparison(documents, args.output)
    print(table.read_text(encoding="utf-8"))
    print(f"wrote {table} and {plot}")
    return 0
