"""One verbosity setting for the whole stack: our loggers, transformers', datasets' and datatrove's.

    -q   warnings and errors only; no progress bars
    (default)  what each stage is doing; progress bars for long steps when stderr is a terminal (in a log
         file they are noise: tqdm's `TQDM_DISABLE` turns off every bar, datatrove's included);
         libraries at warning level
    -v   libraries at info level too (transformers, datasets, datatrove's per-task pipeline logs)
    -vv  everything at debug level

datatrove logs through loguru; `curation.executors` follows the `curation` logger's level set here.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["PROJECT_LOGGERS", "configure_verbosity", "quiet_progress_bars"]

PROJECT_LOGGERS = (
    "rexbert",
    "trainers",
    "curation",
    "eval_suites",
    "hub_cards",
    "modeling_rexbert",
    "rexbert_core",
)


def quiet_progress_bars(argv: list[str]) -> None:
    """Turn every tqdm bar off when no one watches (stderr is not a terminal) or with -q. tqdm reads
    `TQDM_DISABLE` when it is first imported, so this runs before the subcommand's modules load."""
    if "-q" in argv or "--quiet" in argv or not sys.stderr.isatty():
        os.environ["TQDM_DISABLE"] = "1"


def configure_verbosity(verbosity: int) -> None:
    """Set every logger from `verbosity`: -1 quiet, 0 default, 1 verbose, 2 debug."""
    ours = {-1: logging.WARNING, 0: logging.INFO, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    theirs = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(ours)
    # curation's executors map this level onto datatrove's console output (DEBUG: datatrove at INFO)
    logging.getLogger("curation").setLevel(ours if verbosity < 1 else logging.DEBUG)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _configure_hugging_face(theirs, progress=verbosity >= 0 and sys.stderr.isatty())
    _quiet_fasttext(verbosity)


def _configure_hugging_face(level: int, progress: bool) -> None:
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity(level)
    datasets.utils.logging.set_verbosity(level)
    if progress:
        transformers.utils.logging.enable_progress_bar()
        datasets.enable_progress_bars()
    else:
        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()


def _quiet_fasttext(verbosity: int) -> None:
    """fastText prints a deprecation notice on stderr at every model load (once per task and stage);
    it says nothing a user can act on, so it is shown only in debug mode."""
    if verbosity >= 2:
        return
    try:
        import fasttext.FastText
    except ImportError:
        return
    fasttext.FastText.eprint = lambda *args, **kwargs: None
