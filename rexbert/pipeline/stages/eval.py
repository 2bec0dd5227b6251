"""`eval`: every configured suite on `model/` into `eval/` (results.json, results.md, results.png;
`eval_suites.runner`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval_suites.common import Budget
from eval_suites.runner import (
    RESULTS_MARKDOWN,
    RESULTS_PLOT,
    comparison_plot,
    default_budget,
    evaluate_model,
    results_document,
    suite_options,
    write_results,
)
from rexbert_core.sample_corpus import eval_set_paths
from rexbert_core.tables import markdown_table

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage
from .report import link, read_json

__all__ = ["STAGE", "EvalJob"]


@dataclass(frozen=True)
class EvalJob:
    """The suites to run on `model`, their data, budgets and options; `generated`: the data are the sample
    run's generated sets (said wherever the scores are shown, the cards included)."""

    model: Path
    output: Path
    suites: tuple[str, ...]
    data: dict[str, list[str]]
    budgets: dict[str, Budget]
    options: dict[str, Any]
    generated: bool


def configure(config: RunConfig, layout: Layout) -> EvalJob:
    section, seeds = config.eval, config.seeds
    budgets = {
        suite: default_budget(suite).override(
            **{
                **section.budget.get("all", {}),
                **section.budget.get(suite, {}),
                "seed": seeds[f"eval.{suite}"].value,
            }
        )
        for suite in section.suites
    }
    options = {
        suite: suite_options(suite, section.options.get(suite), f"run config.eval.options.{suite}")
        for suite in section.suites
    }
    return EvalJob(
        model=layout.model,
        output=layout.eval,
        suites=tuple(section.suites),
        data=eval_data(config, layout),
        budgets=budgets,
        options=options,
        generated=config.data.sample_corpus and not section.data,
    )


def eval_data(config: RunConfig, layout: Layout) -> dict[str, list[str]]:
    """{data key: paths} for the suites: `eval.data`, or the generated sets in sample mode."""
    if config.eval.data:
        return {key: list(value) for key, value in config.eval.data.items()}
    sets = {key: str(path) for key, path in eval_set_paths(layout.sample_eval).items()}
    return {
        "esci": [sets["esci_examples"], sets["esci_products"]],
        "glue": [sets["glue"]],
        "ner": [sets["ner"]],
    }


def run(job: EvalJob, plan: RunPlan) -> dict:
    results = evaluate_model(str(job.model), list(job.suites), job.data, job.budgets, job.options)
    document = results_document(str(job.model), results, " (generated sample set)" if job.generated else "")
    write_results(document, job.output)
    comparison_plot([document], job.output / RESULTS_PLOT)
    return {
        suite: {"main_metric": record["main_metric"], "value": record["metrics"][record["main_metric"]]}
        for suite, record in document["suites"].items()
    }


def report_section(plan: RunPlan) -> list[str]:
    layout = plan.layout
    results = read_json(layout.results)
    rows = [
        [
            name,
            r["dataset"]["name"],
            r["main_metric"],
            f"{r['metrics'][r['main_metric']]:.4f}",
            r["n_examples"],
        ]
        for name, r in results["suites"].items()
    ]
    files = [layout.results, layout.eval / RESULTS_MARKDOWN, layout.eval / RESULTS_PLOT]
    return [
        "## Evaluation",
        "",
        ", ".join(link(plan, path) for path in files) + ".",
        "",
        markdown_table(["suite", "dataset", "main metric", "score", "examples"], rows),
        "",
    ]


STAGE = Stage("eval", run, outputs=("eval",), section="eval", configure=configure, report=report_section)
