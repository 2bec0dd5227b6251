"""Planning a run: every stage's typed config built once, from the run config and the output layout, before
any stage runs (so a mistake anywhere stops the run in one line, and nothing is built twice).

    plan = load_run(None, ["seed=7"], output="runs/demo")   # read, check, plan
    plan.jobs["pretrain"]                                     # the `trainers.recipes.Recipe` pretraining gets
    run(plan)                                                 # `rexbert.pipeline.runner`
"""

from __future__ import annotations

from pathlib import Path

from .config import RunConfig, read_run_config
from .layout import Layout
from .stage import RunPlan, Stage
from .stages import STAGES

__all__ = ["DEFAULT_OUTPUT", "load_run", "plan_run"]

DEFAULT_OUTPUT = "runs/rexbert"


def plan_run(config: RunConfig, output: str | Path, stages: tuple[Stage, ...] = STAGES) -> RunPlan:
    """Configure every stage for a run of `config` into `output`."""
    layout = Layout(Path(output).resolve())
    jobs = {stage.name: stage.configure(config, layout) for stage in stages}
    seeds = {name: str(seed) for name, seed in config.seeds.items()}
    return RunPlan(config, layout, stages, jobs, resolved={"seeds": seeds})


def load_run(
    path: str | Path | None = None, overrides: list[str] | None = None, output: str | Path | None = None
) -> RunPlan:
    """Read a run config (default: the embedded one), apply `--set` overrides, and plan it into `output`
    (default: the config's `output`, else `runs/rexbert`)."""
    config = read_run_config(path, overrides)
    return plan_run(config, output or config.output or DEFAULT_OUTPUT)
