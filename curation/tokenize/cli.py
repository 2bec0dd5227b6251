"""`rexbert tokenize`: the command line of `curation.tokenize`."""

from __future__ import annotations

import argparse
import os

from curation.config import ExecutorConfig
from rexbert_core.typed_config import ConfigError, UsageError, from_mapping

from .config import TokenizeConfig
from .run import tokenize_corpus

__all__ = ["add_arguments", "main"]


def _source(value: str) -> tuple[str, str]:
    name, separator, files = value.partition("=")
    if not separator or not name or not files:
        raise argparse.ArgumentTypeError(f"expected NAME=FILES, got {value!r}")
    return name, files


def _executor(value: str) -> ExecutorConfig:
    import yaml

    try:
        mapping = yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"not a YAML mapping: {error}") from None
    try:
        return from_mapping(ExecutorConfig, mapping, "--executor")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Tokenize a corpus once into memory-mappable token shards (see curation.tokenize)."
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory (a saved model) or Hub id")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument(
        "--source",
        action="append",
        type=_source,
        default=[],
        metavar="NAME=FILES",
        help="a source and its parquet or jsonl(.gz) files (a glob; repeat the option for more sources)",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        type=_source,
        default=[],
        metavar="NAME=ID[:CONFIG]",
        help="a source read with `datasets` (streaming): a Hub id or a local dataset folder",
    )
    parser.add_argument(
        "--dataset-tasks", type=int, default=1, help="tasks per --dataset source (more than 1: not in order)"
    )
    parser.add_argument("--split", default="train", help="split of the --dataset sources")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--workers", type=int, default=1, help="tasks run in parallel (one task per file)")
    parser.add_argument(
        "--executor",
        type=_executor,
        default=ExecutorConfig(),
        metavar="MAPPING",
        help="datatrove executor as a YAML mapping, as in curation configs, e.g. "
        "\"{kind: slurm, options: {partition: cpu, time: '2:00:00'}}\" (default: local)",
    )
    parser.add_argument("--restart", action="store_true", help="delete what an earlier tokenize wrote first")


def main(args: argparse.Namespace) -> int:
    sources: dict[str, list[str]] = {}
    for name, files in args.source:
        sources.setdefault(name, []).append(files)
    if args.workers < 1 or args.dataset_tasks < 1:
        raise UsageError("--workers and --dataset-tasks must be at least 1")
    config = TokenizeConfig(
        output_dir=os.path.abspath(args.output),
        tokenizer=args.tokenizer,
        sources=sources,
        text_column=args.text_column,
        workers=args.workers,
        datasets=dict(args.dataset),
        dataset_tasks=args.dataset_tasks,
        split=args.split,
        executor=args.executor,
    )
    manifest = tokenize_corpus(config, restart=args.restart)
    if manifest is None:
        last = os.path.join(config.output_dir, "manifest.json")
        print(f"submitted the {config.executor.kind} jobs; the last one writes {last}")
        return 0
    for name, source in manifest.sources.items():
        rejected = ", ".join(f"{count} {reason}" for reason, count in sorted(source.rejected.items()))
        print(
            f"{name}: {source.documents} documents, {source.tokens} tokens in {len(source.shards)} shards"
            f" ({f'rejected: {rejected}; see rejects/' if rejected else 'nothing rejected'})"
        )
    print(os.path.join(config.output_dir, "manifest.json"))
    return 0
