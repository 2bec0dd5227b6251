"""`rexbert run`: the whole job on one config, from raw text to a model ready to publish.

rexbert run --output runs/demo                                   # embedded default, offline, about a minute
rexbert run --config rexbert/configs/run_shared_data.yaml --output runs/shared
rexbert run --output runs/demo --set pretrain.overrides.phases.general.steps=200
"""

from __future__ import annotations

import argparse
import logging
import time

from rexbert_core.typed_config import add_override_argument

from .config import DEFAULT_CONFIG
from .plan import DEFAULT_OUTPUT, load_run
from .runner import run
from .stages import STAGES

__all__ = ["add_arguments", "main"]

logger = logging.getLogger("rexbert.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Curate -> pretrain (three phases) -> evaluate -> cards, into one output directory."
    parser.add_argument(
        "--config", help=f"run config YAML or shipped name (default: the embedded {DEFAULT_CONFIG.name})"
    )
    parser.add_argument(
        "--output", help=f"output directory (default: the config's `output`, else {DEFAULT_OUTPUT})"
    )
    add_override_argument(parser, "pretrain.overrides.phases.general.steps=200")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="delete what an earlier run created in the output directory (and nothing else) and start over",
    )
    parser.add_argument(
        "--stop-after",
        choices=[stage.name for stage in STAGES],
        help="stop after this stage (rerun later to continue)",
    )


def main(args: argparse.Namespace) -> int:
    plan = load_run(args.config, args.overrides, args.output)
    started = time.perf_counter()
    run(plan, stop_after=args.stop_after, restart=args.restart)
    logger.info("finished in %.1f s; open %s", time.perf_counter() - started, plan.layout.report)
    return 0
