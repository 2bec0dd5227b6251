"""The `rexbert` command line.

Each subcommand lives in the package that owns it and is imported only when used, so `rexbert convert`
never pays for datatrove and `rexbert curate` never builds a model:

    rexbert run          rexbert.pipeline.cli       curate -> pretrain -> eval -> cards, end to end
    rexbert pretrain     trainers.cli               one or all phases of a recipe
    rexbert curate       curation.cli               the Ecom-niverse corpus pipeline
    rexbert tokenize     curation.tokenize.cli      a corpus into token shards that pretraining memory-maps
    rexbert eval         eval_suites.cli            benchmark suites on checkpoint directories
    rexbert finetune     eval_suites.tasks.cli      search and catalogue models that ship, with baselines
    rexbert embed        eval_suites.retrieval.embed_cli   a catalogue's embeddings and search index
    rexbert search       eval_suites.retrieval.search_cli  the top products for a query
    rexbert push         hub_cards.cli              model / dataset cards and Hub uploads
    rexbert convert      modeling_rexbert.convert   ModernBERT <-> RexBERT checkpoint directories
    rexbert sample-data  rexbert_core.sample_corpus.cli  the generated sample data, written to a folder

A subcommand module exposes `add_arguments(parser)` and `main(args) -> int`.

This is the one error boundary of the project: a problem with the input (a config, a file, an argument:
`ConfigError`, `DataError`, `UsageError`, a missing file) is one line on stderr, `error: ...`, and exit
status 2; a failure the program explains (`RunError`: a curation that kept nothing, a training run that
diverged) is one line and exit status 1; any other failure is one line too, exit status 1, and `-v` shows
the traceback. SIGINT and
SIGTERM end the command and every process it started (exit status 130).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback

from rexbert import __version__
from rexbert.verbosity import configure_verbosity, quiet_progress_bars
from rexbert_core.safe_outputs import descendants, kill_trees
from rexbert_core.typed_config import ConfigError, DataError, RunError, UsageError

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

logger = logging.getLogger("rexbert")

SUBCOMMANDS = {
    "run": ("rexbert.pipeline.cli", "the whole pipeline on one config"),
    "pretrain": ("trainers.cli", "pretrain with a phase recipe"),
    "curate": ("curation.cli", "build a domain corpus"),
    "tokenize": ("curation.tokenize.cli", "tokenize a corpus once into memory-mappable token shards"),
    "eval": ("eval_suites.cli", "run evaluation suites"),
    "finetune": ("eval_suites.tasks.cli", "fine-tune a retrieval, rerank, classify or extract model"),
    "embed": ("eval_suites.retrieval.embed_cli", "embed a product catalogue into a search index"),
    "search": ("eval_suites.retrieval.search_cli", "search a catalogue index, optionally reranked"),
    "push": ("hub_cards.cli", "write cards and push models or datasets to the Hub"),
    "convert": ("modeling_rexbert.convert", "convert checkpoints between ModernBERT and RexBERT"),
    "sample-data": ("rexbert_core.sample_corpus.cli", "write the generated sample data to a folder"),
}

USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DataError,
    UsageError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
)


def _user_errors() -> tuple[type[BaseException], ...]:
    """`USER_ERRORS` plus the error types of packages that cannot import `typed_config` (the model package
    ships as Hub remote code with torch and transformers only)."""
    from modeling_rexbert.convert import ConversionError

    return (*USER_ERRORS, ConversionError)


def _volume_options() -> argparse.ArgumentParser:
    """-v / -q, accepted before or after the subcommand. Each parser gets its own copy with suppressed
    defaults, so the subcommand's copy does not reset what was given before it."""
    options = argparse.ArgumentParser(add_help=False)
    volume = options.add_mutually_exclusive_group()
    volume.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more logging (-vv: debug)"
    )
    volume.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="warnings and errors only, no progress bars",
    )
    return options


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(
        prog="rexbert", description=__doc__.splitlines()[0], parents=[_volume_options()]
    )
    parser.add_argument("--version", action="version", version=f"rexbert {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    chosen_module = None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, parents=[_volume_options()])
        if name == chosen:  # import only the module that will run
            chosen_module = importlib.import_module(module_name)
            chosen_module.add_arguments(sub)
    return parser, chosen_module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet_progress_bars(argv)
    parser, module = build_parser(argv)
    args = parser.parse_args(argv)
    if module is None:
        parser.print_help()
        return 2
    verbosity = -1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0)
    configure_verbosity(verbosity)
    previous = signal.signal(
        signal.SIGTERM, _interrupt
    )  # SIGTERM unwinds like Ctrl-C: locks end their workers
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        kill_trees(descendants(os.getpid()))
        print("error: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        _report(error, verbosity, hint=False)
        return 2
    except RunError as error:  # a failure the message explains: no traceback to offer
        _report(error, verbosity, hint=False)
        return 1
    except Exception as error:  # the boundary: every failure ends as one line, not a traceback
        _report(error, verbosity, hint=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _report(error: BaseException, verbosity: int, hint: bool) -> None:
    if verbosity >= 1:
        traceback.print_exc()
    message = " ".join(str(error).split()) or type(error).__name__
    if hint:
        message = f"{type(error).__name__}: {message}" + (
            "" if verbosity >= 1 else " (rerun with -v for the traceback)"
        )
    print(f"error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
