"""Run the curation step lists on one of datatrove's executors, chosen by the config's `executor:` setting.

- ``local``: `LocalPipelineExecutor`, the lists one after another, `workers` processes each.
- ``slurm``: `SlurmPipelineExecutor`, one job array per list, each depending on the one before
  (``afterok``), submitted at once; this returns when they are queued and the last job writes the report.
- ``ray``: `RayPipelineExecutor` on the Ray cluster the process connects to (a local one when none is
  running), the lists in order; returns when the report is written.

The step lists are the same for all three (`curation.pipeline.PipelineBuilder`); only this module knows
executors. Console logging follows the `curation` logger's level: datatrove logs every task's pipeline
and stats at INFO, which for a run of a few seconds is pages of output; at the default level its console
output is kept to warnings while the per-task log files under `logs/` keep everything.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from loguru import logger as datatrove_logger

from curation.config import ExecutorConfig
from curation.pipeline import StepList

__all__ = ["QuietLocalExecutor", "StepListsOutcome", "build_executors", "run_step_lists"]

logger = logging.getLogger(__name__)


def console_level() -> str:
    """The loguru level for datatrove's console output, from the `curation` logger's level."""
    return "INFO" if logging.getLogger("curation").getEffectiveLevel() <= logging.DEBUG else "WARNING"


def _reset_console_sink() -> None:
    datatrove_logger.remove()
    datatrove_logger.add(sys.stderr, level=console_level())


class QuietLocalExecutor(LocalPipelineExecutor):
    """`LocalPipelineExecutor` whose tasks log to the console only at `console_level()`.

    datatrove gives a task a console sink at INFO when its `local_rank` is 0 and at ERROR otherwise (the
    parameter exists for that and is used for nothing else); below DEBUG every task is started as a
    non-first local rank. Each task's log file is unaffected.
    """

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        quiet = console_level() != "INFO"
        try:
            return super()._run_for_rank(rank, max(local_rank, 1) if quiet else local_rank, node_rank)
        finally:
            _reset_console_sink()  # datatrove re-adds a DEBUG console sink after each task

    def run(self):
        _reset_console_sink()
        return super().run()


def build_executors(
    step_lists: list[StepList], logs: str, executor_config: ExecutorConfig, workers: int
) -> list[PipelineExecutor]:
    """One datatrove executor per step list (logging to `logs/<step list>`), each depending on the one
    before (slurm, ray)."""
    kind, options = executor_config.kind, executor_config.options
    executors: list[PipelineExecutor] = []
    for step_list in step_lists:
        common = dict(
            tasks=step_list.tasks,
            logging_dir=os.path.join(logs, step_list.name),
            skip_completed=not step_list.always_rerun,
        )
        if kind == "local":
            executor = QuietLocalExecutor(
                step_list.steps, workers=min(workers, step_list.tasks), **common, **options
            )
        elif kind == "slurm":
            from datatrove.executor import SlurmPipelineExecutor

            executor = SlurmPipelineExecutor(
                step_list.steps,
                job_name=f"curation-{step_list.name}",
                depends=executors[-1] if executors else None,
                **common,
                **options,
            )
        else:
            from datatrove.executor.ray import RayPipelineExecutor

            executor = RayPipelineExecutor(
                step_list.steps,
                workers=min(workers, step_list.tasks),
                depends=executors[-1] if executors else None,
                **common,
                **options,
            )
        executors.append(executor)
    return executors


@dataclass
class StepListsOutcome:
    """What `run_step_lists` left: true when every list has finished (local, ray); false when they were only
    submitted (slurm), with the ids of the jobs submitted, which hold the output's lock until they end."""

    finished: bool
    slurm_jobs: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.finished


def run_step_lists(
    step_lists: list[StepList],
    logs: str,
    executor_config: ExecutorConfig,
    workers: int,
    on_step: Callable[[int, int, str], None] | None = None,
) -> StepListsOutcome:
    """Run the step lists on the configured executor (see `StepListsOutcome`)."""
    executors = build_executors(step_lists, logs, executor_config, workers)
    kind = executor_config.kind
    if kind == "local":
        for index, (step_list, executor) in enumerate(zip(step_lists, executors), start=1):
            if on_step is not None:
                on_step(index, len(executors), step_list.name)
            executor.run()
        return StepListsOutcome(True)
    if on_step is not None:
        on_step(len(executors), len(executors), f"{kind}: {' -> '.join(s.name for s in step_lists)}")
    executors[-1].run()  # runs (ray) or submits (slurm) its dependencies first
    if kind != "slurm":
        return StepListsOutcome(True)
    return StepListsOutcome(False, [str(e.job_id) for e in executors if getattr(e, "job_id", None)])
