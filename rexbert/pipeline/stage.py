"""What a stage of `rexbert run` is (one declaration that the layout, the plan, the runner and the report
read), and the plan every stage is handed.

    Stage(
        name="pretrain",
        outputs=("pretrain",),               # `Layout` properties: the run-directory entries it creates
        section="pretrain",                  # the run-config section it reads (None: none of its own)
        configure=pretrain_recipe,           # (RunConfig, Layout) -> the typed config its library takes
        run=run_pretraining,                 # (that config, RunPlan) -> what it produced (its done-marker)
        report=pretraining_section,          # (RunPlan) -> its lines of report.md (optional)
    )

`configure` runs for every stage before the first stage runs (`rexbert.pipeline.plan.plan_run`), so a stage
builds its library's config once, from the run config and the output layout, and every mistake is found
before anything is written; `run` gets exactly that object (`RunPlan.jobs[name]`). A new stage is a module
with such a declaration, listed once in `rexbert.pipeline.stages.STAGES` (and a run-config section if it
has settings of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import RunConfig
from .layout import Layout

__all__ = ["RunPlan", "Stage"]


def _nothing_to_configure(config: RunConfig, layout: Layout) -> None:
    return None


@dataclass(frozen=True)
class Stage:
    """One stage of a run (see the module docstring)."""

    name: str
    run: Callable[[Any, RunPlan], dict]
    outputs: tuple[str, ...] = ()
    section: str | None = None
    configure: Callable[[RunConfig, Layout], Any] = _nothing_to_configure
    report: Callable[[RunPlan], list[str]] | None = None

    def entries(self, layout: Layout) -> tuple[str, ...]:
        """The top-level entries of the run directory this stage creates."""
        return tuple(dict.fromkeys(layout.entry(getattr(layout, name)) for name in self.outputs))


@dataclass
class RunPlan:
    """A run, planned: the config, where it writes, its stages in order and what each is handed (`jobs`:
    stage name -> the typed config its library takes; None where a stage is skipped or needs none), and
    `resolved`: what came from where (the seeds), written into `run_config.yaml`."""

    config: RunConfig
    layout: Layout
    stages: tuple[Stage, ...]
    jobs: dict[str, Any]
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)
