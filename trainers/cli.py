"""`rexbert pretrain`: the phases of a recipe, all or some, resumable.

    rexbert pretrain --recipe rexbert-17m --output runs/rexbert-17m
    rexbert pretrain --recipe tiny --phase 2 --resume --output runs/tiny --max-steps 10
    rexbert pretrain --recipe my.yaml --source ecom=data/ecom/*.parquet --set phases.anneal.steps=500
    rexbert pretrain --recipe rexbert-150m --init-from answerdotai/ModernBERT-base --phase 3 \
        --source general=general/*.parquet --source ecom=ecom/*.parquet --output runs/continued

The top-level `rexbert` command (`rexbert.cli`) dispatches here; under a launcher every process runs
the same command: `torchrun --nproc_per_node 8 -m rexbert pretrain --recipe rexbert-150m ...`.

Precedence, lowest first: the recipe file (over the files it `extends:`), then `--set` overrides, then the
flags `--source`, `--shards` and `--init-from`, which change the typed recipe (a source set by a flag reads
only what the flag names). The recipe as it ran is written to the output as `recipe.yaml`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rexbert_core.typed_config import ConfigError, add_override_argument, with_changes

from .pretrain import SUMMARY_FILENAME, pretrain
from .recipes import Recipe, SourceSpec, load_recipe

__all__ = ["add_arguments", "init_flag", "main", "shards_flag", "source_flags"]

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
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check every block of every token shard against its checksum before training (without it, each "
        "block is checked the first time training reads it)",
    )
    add_override_argument(parser, "phases.anneal.steps=500")


def source_flags(recipe: Recipe, items: list[str]) -> Recipe:
    """`--source NAME=FILES`: source NAME reads exactly those files (a glob or a comma-separated list)."""
    sources = dict(recipe.sources)
    for item in items:
        name, sep, files = item.partition("=")
        if not sep or not name or not files:
            raise ConfigError(f"--source {item!r}: expected NAME=FILES")
        paths = files.split(",")
        sources[name] = sources.get(name, SourceSpec()).reading(
            f"--source {name}", data_files=paths if len(paths) > 1 else paths[0]
        )
    return with_changes(recipe, "--source", sources=sources) if items else recipe


def shards_flag(recipe: Recipe, directory: str | None) -> Recipe:
    """`--shards DIR`: every source DIR's manifest lists reads its shards, with the tokenizer they were made with."""
    if not directory:
        return recipe
    from rexbert_core.token_shards import ShardsManifest

    sources = dict(recipe.sources)
    for name in ShardsManifest.load(directory).sources:
        sources[name] = sources.get(name, SourceSpec()).reading(f"--shards {name}", shards=directory)
    tokenizer = {"path": str(Path(directory) / "tokenizer"), "train_vocab_size": None}
    return with_changes(recipe, "--shards", sources=sources, tokenizer=tokenizer)


def init_flag(recipe: Recipe, init_from: str | None) -> Recipe:
    """`--init-from X`: the recipe starts from X and uses X's tokenizer (its vocabulary stays the model's)."""
    if not init_from:
        return recipe
    tokenizer = {"path": init_from, "train_vocab_size": None}
    return with_changes(recipe, "--init-from", init_from=init_from, tokenizer=tokenizer)


def verify_shards(recipe: Recipe) -> None:
    """`--verify`: every block of every shard source checked now (about 2 GB/s per core), naming damage."""
    from rexbert_core.token_shards import SourceTokens

    for name, spec in recipe.sources.items():
        if spec.shards is not None:
            tokens = SourceTokens(spec.shards, spec.shards_source or name, verify=True)
            logger.info("sources.%s: %d tokens in %s verified", name, tokens.num_tokens, spec.shards)


def main(args: argparse.Namespace) -> int:
    if args.max_steps is not None and args.max_steps <= 0:
        raise ConfigError(f"--max-steps must be positive, got {args.max_steps}")
    recipe = load_recipe(args.recipe, args.overrides)  # the file, then --set
    recipe = init_flag(shards_flag(source_flags(recipe, args.source), args.shards), args.init_from)
    if args.verify:
        verify_shards(recipe)
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
