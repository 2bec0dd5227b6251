"""`rexbert pretrain`: the phases of a recipe, all or some, resumable.

    rexbert pretrain --recipe rexbert-17m --output runs/rexbert-17m
    rexbert pretrain --recipe tiny --phase 2 --resume --output runs/tiny --max-steps 10
    rexbert pretrain --recipe my.yaml --source ecom=data/ecom/*.parquet --set phases.anneal.steps=500
    rexbert pretrain --recipe rexbert-150m --init-from answerdotai/ModernBERT-base --phase 3 \
        --source general=general/*.parquet --source ecom=ecom/*.parquet --output runs/continued

The top-level `rexbert` command (`rexbert.cli`) dispatches here; under a launcher every process runs
the same command: `torchrun --nproc_per_node 8 -m rexbert pretrain --recipe rexbert-150m ...`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from rexbert_core.typed_config import ConfigError, add_override_argument

from .pretrain import SUMMARY_FILENAME, pretrain
from .recipes import SourceSpec, load_recipe

__all__ = ["add_arguments", "init_overrides", "main", "shards_overrides", "source_overrides"]

logger = logging.getLogger("rexbert.pretrain")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Pretrain RexBERT with a phase recipe (YAML): all phases, or the ones named."
    parser.add_argument(
        "--recipe",
        required=True,
        help="recipe file, or a shipped recipe name: tiny, rexbert-17m, -32m, -68m, -150m, -400m",
    )
    parser.add_argument(
        "--phase",
        action="append",
        metavar="N|NAME",
        help="run only this phase (number or name); repeatable; default: all in order",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip finished phases and continue an interrupted one from its last checkpoint",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="delete what an earlier pretraining wrote into the output directory (and nothing else) first",
    )
    parser.add_argument("--output", default="runs/pretrain", help="output directory (default: runs/pretrain)")
    parser.add_argument("--max-steps", type=int, help="train every selected phase for this many steps")
    parser.add_argument(
        "--init-from",
        metavar="DIR|HUB_ID",
        help="continue pretraining an existing encoder (ModernBERT, Ettin, RexBERT): the first selected phase "
        "starts from it, and its tokenizer, vocabulary and shape are kept",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=FILES",
        help="read source NAME from these local files (glob or comma-separated list)",
    )
    parser.add_argument(
        "--shards",
        metavar="DIR",
        help="read every source the `rexbert tokenize` output DIR holds from its token shards (memory-mapped), "
        "with the tokenizer they were made with",
    )
    add_override_argument(parser, "phases.anneal.steps=500")


def _reads_only(name: str, kind: str, value) -> list[str]:
    """Overrides that make recipe source NAME read `value` as `kind` (a `SourceSpec` field) and nothing else."""
    others = [other for other in (*SourceSpec.KINDS, *SourceSpec.SELECTORS) if other != kind]
    return [f"sources.{name}.{kind}={json.dumps(value)}"] + [
        f"sources.{name}.{other}=null" for other in others
    ]


def source_overrides(items: list[str]) -> list[str]:
    """`NAME=FILES` -> recipe overrides that make NAME read exactly those files."""
    overrides = []
    for item in items:
        name, sep, files = item.partition("=")
        if not sep or not files:
            raise ConfigError(f"--source {item!r}: expected NAME=FILES")
        paths = files.split(",")
        overrides += _reads_only(name, "data_files", paths if len(paths) > 1 else paths[0])
    return overrides


def shards_overrides(directory: str | None) -> list[str]:
    """`--shards DIR`: each source DIR's manifest lists reads its shards; the tokenizer is DIR's."""
    if not directory:
        return []
    from rexbert_core.token_shards import ShardsManifest

    overrides = [
        f"tokenizer.path={json.dumps(str(Path(directory) / 'tokenizer'))}",
        "tokenizer.train_vocab_size=null",
    ]
    for name in ShardsManifest.load(directory).sources:
        overrides += _reads_only(name, "shards", directory) + [f"sources.{name}.streaming=false"]
    return overrides


def init_overrides(init_from: str | None) -> list[str]:
    """`--init-from X`: the recipe starts from X and uses X's tokenizer (its vocabulary stays the model's)."""
    if not init_from:
        return []
    value = json.dumps(init_from)
    return [f"init_from={value}", f"tokenizer.path={value}", "tokenizer.train_vocab_size=null"]


def main(args: argparse.Namespace) -> int:
    if args.max_steps is not None and args.max_steps <= 0:
        raise ConfigError(f"--max-steps must be positive, got {args.max_steps}")
    overrides = source_overrides(args.source) + shards_overrides(args.shards)
    overrides += init_overrides(args.init_from) + args.overrides
    recipe = load_recipe(args.recipe, overrides)
    summary = pretrain(
        recipe,
        args.output,
        phases=args.phase,
        resume=args.resume,
        restart=args.restart,
        max_steps=args.max_steps,
    )
    for record in summary["phases"]:
        logger.info(
            "phase %d %-8s steps %6d tokens %10d final loss %.4f",
            record["phase"],
            record["name"],
            record["steps"],
            record["tokens"],
            record["final_loss"],
        )
    logger.info(
        "model: %s; summary: %s", Path(args.output) / summary["model"], Path(args.output) / SUMMARY_FILENAME
    )
    return 0
