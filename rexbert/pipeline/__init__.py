"""`rexbert run`: the end-to-end pipeline (curate -> pretrain -> evaluate -> cards -> report).

config.py   the typed run config
load.py     load_run_config: the config, and every stage's own config, checked before anything runs
layout.py   the output directory and the stages' done-markers
stages.py   one function per stage, each calling one library
report.py   report.md
runner.py   run the stages not yet done; refuse a changed config
cli.py      the command line
"""

from .config import CONFIG_DIR, DEFAULT_CONFIG, RunConfig
from .layout import Layout
from .load import load_run_config
from .runner import run
from .stages import STAGES

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_CONFIG",
    "STAGES",
    "Layout",
    "RunConfig",
    "load_run_config",
    "run",
]
