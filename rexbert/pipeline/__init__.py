"""`rexbert run`: the end-to-end pipeline (curate -> pretrain -> evaluate -> cards -> report).

config.py   the typed run config, and the precedence rules (values, seeds), stated once
layout.py   the output directory: run-level paths and the stages' done-markers
stage.py    what a stage is (one declaration) and the plan every stage is handed
stages/     one module per stage, each declaring its `Stage`; `STAGES` orders them
plan.py     every stage's typed config built once, before the first stage runs
runner.py   run the stages not yet done; refuse a changed config
cli.py      the command line
"""

from .config import CONFIG_DIR, DEFAULT_CONFIG, RunConfig, read_run_config
from .layout import Layout
from .plan import load_run, plan_run
from .runner import run
from .stage import RunPlan, Stage
from .stages import STAGES

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_CONFIG",
    "STAGES",
    "Layout",
    "RunConfig",
    "RunPlan",
    "Stage",
    "load_run",
    "plan_run",
    "read_run_config",
    "run",
]
