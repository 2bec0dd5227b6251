"""`rexbert finetune TASK`: a search or catalogue model from any RexBERT or ModernBERT encoder, trained on the
stock trainer of its ecosystem, evaluated against a baseline on held-out data, and shipped as a plain
ModernBERT checkpoint in `OUTPUT/model`.

    rexbert finetune retrieval --model runs/demo/model --data esci/ --output runs/retrieval
    rexbert finetune rerank    --model runs/demo/model --data esci/ --output runs/rerank \\
        --set retriever=runs/retrieval/model
    rexbert finetune classify  --model M --data esci/ --output O [--set variant=substitute]
    rexbert finetune classify  --model M --data products.csv --output O --set variant=table \\
        --set text_column=title --set label_column=category
    rexbert finetune extract   --model M --data ner.jsonl --output O

`--data` takes the ESCI release folder, the two parquet files, any query/product/label table, a Hub dataset
id, or (extract) a span-annotated jsonl. `--preset smoke|default|full` chooses the budget, `--set KEY=VALUE`
changes any field (`eval_suites.tasks.config`); both are checked before a model is loaded. Rerunning with the
same settings resumes from the last checkpoint; `--restart` starts over.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from rexbert_core.typed_config import add_override_argument, to_mapping

from .config import PRESETS, TASKS, task_config

__all__ = ["add_arguments", "main"]

logger = logging.getLogger("rexbert.finetune")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("task", help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--model", required=True, help="a RexBERT or ModernBERT directory or Hub id")
    parser.add_argument("--data", required=True, nargs="+", help="the data (see above)")
    parser.add_argument("--output", required=True, help="the output directory (owned, resumable)")
    parser.add_argument("--preset", default="default", help=f"one of {', '.join(PRESETS)} (default: default)")
    parser.add_argument(
        "--restart", action="store_true", help="delete what an earlier fine-tune wrote there first"
    )
    add_override_argument(parser, "train.epochs=2")


def main(args: argparse.Namespace) -> int:
    from eval_suites.models import check_model_path

    from . import classify, extract, rerank, retrieval
    from .outputs import TaskOutput

    config = task_config(args.task, args.preset, args.overrides)  # every field checked before any loading
    check_model_path(args.model)
    runners = {
        "retrieval": retrieval.run,
        "rerank": rerank.run,
        "classify": classify.run,
        "extract": extract.run,
    }
    data = [os.path.abspath(d) if Path(d).exists() else d for d in args.data]
    record = {"task": args.task, "model": str(args.model), "data": data, "config": to_mapping(config)}
    with TaskOutput(args.output, args.task, record, restart=args.restart) as output:
        results = runners[args.task](str(args.model), data, config, output)
    _summary(args.task, results, Path(args.output))
    return 0


def _summary(task: str, results: dict, output: Path) -> None:
    """One line per method on the console, then where everything is."""
    for method, metrics in results.items():
        if (
            method not in ("training", "data")
            and isinstance(metrics, dict)
            and all(isinstance(v, float) for v in metrics.values())
        ):
            shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items())
            print(f"{task} {method:>14}: {shown}", file=sys.stdout)
    print(f"model: {output / 'model'}; results: {output / 'results.md'}")
