"""What a filter stage is to the pipeline: its settings, and what the pipeline hands them to build its steps.

A filter stage lives in one step file: the datatrove step and its settings, a `FilterStage` dataclass that
holds every default and whose `steps(context)` returns the step(s) the stage adds. The stage's one config
entry is a field of `curation.config.StagesConfig`, whose order is the pipeline's order. Nothing else lists
the stages: `curation.pipeline.PipelineBuilder` walks `StagesConfig.filters()`, and the corpus report is
derived from what the steps counted (`counting.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.text import TokenCounter

__all__ = ["FilterStage", "StepContext"]


@dataclass(frozen=True)
class StepContext:
    """What every stage's steps are built with: the token counter the readers use, and the writer of the
    documents a stage removes (`removed_writer(stage)`; None when removed documents are not written)."""

    token_counter: TokenCounter
    removed_writer: Callable[[str], DiskWriter | None]


@dataclass
class FilterStage:
    """Settings of a per-document stage; `enabled: false` leaves it out of the pipeline."""

    enabled: bool = True

    def steps(self, context: StepContext) -> list[PipelineStep]:
        """The datatrove steps this stage adds, in order."""
        raise NotImplementedError(f"{type(self).__name__} must say which steps it adds")
