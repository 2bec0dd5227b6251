"""`finetune`: search and catalogue models from the run's model (`eval_suites.tasks`), each in
`finetune/<task>/` (its shipped `model/`, `results.json` beside the baselines); by default a bi-encoder and a
reranker on the run's ESCI set, the reranker also over the bi-encoder's results. The report puts every
method next to BM25."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eval_suites.tasks import classify, extract, rerank, retrieval
from eval_suites.tasks.config import task_config
from eval_suites.tasks.outputs import TaskOutput
from rexbert_core.sample_corpus import eval_set_paths
from rexbert_core.tables import markdown_table
from rexbert_core.typed_config import to_mapping, with_changes

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage
from .report import link, read_json

__all__ = ["STAGE", "FinetuneJob"]

RUNNERS = {"retrieval": retrieval.run, "rerank": rerank.run, "classify": classify.run, "extract": extract.run}


@dataclass(frozen=True)
class FinetuneTask:
    name: str
    config: object  # the task's typed config (eval_suites.tasks.config)
    data: tuple[str, ...]
    output: Path


@dataclass(frozen=True)
class FinetuneJob:
    model: Path
    tasks: tuple[FinetuneTask, ...]


def _data(config: RunConfig, layout: Layout, task: str) -> list[str]:
    if config.finetune.data and task in config.finetune.data:
        return list(config.finetune.data[task])
    sets = eval_set_paths(layout.sample_eval)
    return [str(sets["ner"])] if task == "extract" else [str(sets["esci_examples"].parent)]


def configure(config: RunConfig, layout: Layout) -> FinetuneJob:
    section, tasks = config.finetune, []
    for name in section.tasks:
        seed = config.seeds[f"finetune.{name}"].value
        built = task_config(
            name,
            section.preset,
            settings=section.settings.get(name),
            where=f"run config.finetune.settings.{name}",
        )
        built = with_changes(
            built,
            f"run config.finetune.settings.{name}",
            train=with_changes(built.train, "train", seed=seed),
            data=with_changes(built.data, "data", seed=seed),
        )
        if name == "rerank" and "retrieval" in section.tasks and built.retriever is None:
            built = with_changes(
                built,
                f"run config.finetune.settings.{name}",
                retriever=str(layout.finetune / "retrieval" / "model"),
            )
        tasks.append(FinetuneTask(name, built, tuple(_data(config, layout, name)), layout.finetune / name))
    return FinetuneJob(layout.model, tuple(tasks))


def run(job: FinetuneJob, plan: RunPlan) -> dict:
    outputs = {}
    for task in job.tasks:
        record = {
            "task": task.name,
            "model": str(job.model),
            "data": list(task.data),
            "config": to_mapping(task.config),
        }
        with TaskOutput(task.output, task.name, record) as output:
            RUNNERS[task.name](str(job.model), list(task.data), task.config, output)
        outputs[task.name] = str(task.output)
    return outputs


def report_section(plan: RunPlan) -> list[str]:
    lines = ["## Fine-tuned models", ""]
    search_rows: dict[str, dict] = {}
    for name, folder in plan.layout.outputs_of("finetune").items():
        results = read_json(Path(folder) / "results.json")
        lines.append(
            f"- `{name}`: {link(plan, Path(folder) / 'model')}, {link(plan, Path(folder) / 'results.md')}"
        )
        if name in ("retrieval", "rerank"):
            for method, metrics in results.items():
                if isinstance(metrics, dict) and "ndcg@10" in metrics and method not in search_rows:
                    search_rows[method] = metrics
        else:
            main = "micro_f1" if name == "classify" else "f1"
            scores = ", ".join(
                f"{m} {v[main]:.4f}" for m, v in results.items() if isinstance(v, dict) and main in v
            )
            lines.append(f"  held-out {main}: {scores}")
    if search_rows:
        rows = [
            [m, *(f"{v[k]:.4f}" for k in ("ndcg@10", "mrr@10", "recall@100"))] for m, v in search_rows.items()
        ]
        lines += ["", "Search on held-out queries (the run's ESCI set; BM25 is the lexical baseline):", ""]
        lines.append(markdown_table(["method", "nDCG@10", "MRR@10", "Recall@100"], rows))
    return [*lines, ""]


STAGE = Stage(
    "finetune", run, outputs=("finetune",), section="finetune", configure=configure, report=report_section
)
