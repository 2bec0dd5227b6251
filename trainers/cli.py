"""The `rexbert` command line.

Each subcommand lives in the package that owns it and is imported only when used, so
`rexbert convert` never pays for datatrove and `rexbert curate` never builds a model:

    rexbert convert   modeling_rexbert.convert   ModernBERT <-> RexBERT checkpoint directories
    rexbert pretrain  trainers.pretrain          one or all phases of a recipe
    rexbert curate    curation.cli               the Ecom-niverse corpus pipeline
    rexbert eval      eval_suites.cli            benchmark suites on checkpoint directories
    rexbert push      hub_cards.cli              model / dataset cards and Hub uploads
    rexbert run       trainers.run               curate -> pretrain -> eval -> cards, end to end

A subcommand module exposes `add_arguments(parser)` and `main(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "convert": ("modeling_rexbert.convert", "convert checkpoints between ModernBERT and RexBERT"),
    "pretrain": ("trainers.pretrain", "pretrain with a phase recipe"),
    "curate": ("curation.cli", "build a domain corpus"),
    "eval": ("eval_suites.cli", "run evaluation suites"),
    "push": ("hub_cards.cli", "write cards and push models or datasets to the Hub"),
    "run": ("trainers.run", "the whole pipeline on one config"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(prog="rexbert", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    chosen_module = None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text)
        if name == chosen:  # import only the module that will run
            chosen_module = importlib.import_module(module_name)
            chosen_module.add_arguments(sub)
    return parser, chosen_module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, module = build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 2
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
