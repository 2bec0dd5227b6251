"""`rexbert sample-data`: write the generated sample data to a folder, for trying the commands offline.

    rexbert sample-data --output runs/sample_corpus

Writes `<source>.jsonl` for listing, review and general plus their `sources.json` manifest,
`classifier_examples.jsonl` (text + label, for `rexbert curate train-classifier`) and `eval/` (ESCI,
NER and SST-2-format sets for `rexbert eval`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .documents import write_classifier_examples, write_sample_corpus
from .eval_sets import write_sample_eval_data

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Write the generated sample corpus, classifier examples and evaluation sets."
    parser.add_argument("--output", required=True, help="folder to write into")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")


def main(args: argparse.Namespace) -> int:
    output = Path(args.output)
    corpus = write_sample_corpus(output, seed=args.seed)
    examples = write_classifier_examples(output / "classifier_examples.jsonl", seed=args.seed + 1)
    evaluation = write_sample_eval_data(output / "eval")
    for path in [*corpus, examples, *evaluation.values()]:
        print(path)
    return 0
