"""`rexbert curate`: run the corpus pipeline or train its e-commerce classifier.

    rexbert curate run --config curation/configs/sample.yaml
    rexbert curate train-classifier --data examples.jsonl --out runs/ecom.bin
    rexbert curate train-classifier --shared-data ../shared/data --out runs/ecom.bin

`run` resumes: finished tasks of every step are skipped and the report is rebuilt. `train-classifier`
reads jsonl/parquet rows with a text and a label column (label == --positive-label is e-commerce,
anything else is not), holds out part of them, picks the threshold on a validation part and writes the
fastText model plus ``<out>.json`` with the held-out precision and recall.
"""

from __future__ import annotations

import argparse
import json
import sys

from rexbert_core.typed_config import DataError

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="curate_command", metavar="VERB", required=True)
    run = verbs.add_parser("run", help="run or resume the curation pipeline from a YAML config")
    run.add_argument("--config", required=True, help="YAML run configuration (see curation/configs/)")
    run.add_argument(
        "--restart",
        action="store_true",
        help="delete what an earlier curation wrote into the output directory (and nothing else) first",
    )
    train = verbs.add_parser("train-classifier", help="train the fastText e-commerce classifier")
    data = train.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", nargs="+", help="jsonl/parquet files of labelled examples")
    data.add_argument("--shared-data", help="assemble the labelled pool from the shared data folder")
    train.add_argument("--out", required=True, help="where to write the fastText .bin model")
    train.add_argument("--text-key", default="text")
    train.add_argument("--label-key", default="label")
    train.add_argument("--positive-label", default="ecommerce")
    train.add_argument("--max-per-source", type=int, default=8000, help="with --shared-data")
    train.add_argument("--valid-fraction", type=float, default=0.1)
    train.add_argument("--test-fraction", type=float, default=0.2)
    train.add_argument("--epoch", type=int, default=5)
    train.add_argument("--seed", type=int, default=0)


def _labelled_examples(args) -> tuple[list[str], list[bool], list[str] | None]:
    from curation.readers import iter_records

    if args.shared_data:
        from curation.pool import load_shared_pool

        pool = load_shared_pool(args.shared_data, max_per_source=args.max_per_source, seed=args.seed)
        return [e.text for e in pool], [e.is_ecommerce for e in pool], [e.source for e in pool]
    texts, labels = [], []
    for path in args.data:
        for row, record in enumerate(iter_records(path)):
            text, label = record.get(args.text_key), record.get(args.label_key)
            if not isinstance(text, str) or not text.strip() or label is None:
                raise DataError(
                    f"{path} row {row}: needs a non-empty {args.text_key!r} and a {args.label_key!r}"
                )
            texts.append(text)
            labels.append(str(label) == args.positive_label)
    return texts, labels, None


def train_command(args) -> int:
    from curation.classifier import TrainSettings, train_and_evaluate

    texts, labels, groups = _labelled_examples(args)
    print(f"training on {len(texts):,} labelled examples ({sum(labels):,} e-commerce)", file=sys.stderr)
    summary = train_and_evaluate(
        texts,
        labels,
        args.out,
        args.valid_fraction,
        args.test_fraction,
        TrainSettings(epoch=args.epoch, seed=args.seed),
        groups,
    )
    print(
        json.dumps({k: summary[k] for k in ("model", "threshold", "sizes", "test") if k in summary}, indent=2)
    )
    return 0


def run_command(args) -> int:
    from curation.config import load_config
    from curation.run import run_pipeline

    config = load_config(args.config)

    def announce(index: int, total: int, name: str) -> None:
        print(f"[curate {index}/{total}] {name}", file=sys.stderr, flush=True)

    report = run_pipeline(config, on_step=announce, restart=args.restart)
    if report is None:
        print(
            f"submitted the {config.executor.kind} jobs; the last one writes {config.output_dir}/report/report.md"
        )
        return 0
    totals = report["totals"]
    print(
        f"kept {totals['docs_kept']:,} of {totals['docs_in']:,} documents "
        f"(removed {totals['docs_removed']:,}, rejected {totals['docs_rejected']:,}); "
        f"report: {config.output_dir}/report/report.md"
    )
    if totals.get("duplicate_ids"):
        print(
            f"warning: {totals['duplicate_ids']:,} kept documents repeat an id that a document of another input "
            "file has (ids are kept as given; make them unique per corpus to tell documents apart)",
            file=sys.stderr,
        )
    return 0 if totals["accounting_ok"] else 1


def main(args) -> int:
    if args.curate_command == "run":
        return run_command(args)
    return train_command(args)
