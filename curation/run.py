"""`run_pipeline`: build the step lists of a curation config and run them on its executor."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from curation.config import CurationConfig
from curation.executors import run_step_lists
from curation.layout import CorpusLayout
from curation.pipeline import PipelineBuilder

__all__ = ["run_pipeline"]


def run_pipeline(
    config: CurationConfig, on_step: Callable[[int, int, str], None] | None = None
) -> dict | None:
    """Run (or resume) every step list on the configured executor. Returns the corpus report when the
    executor runs to completion here (local, ray); None when it only submitted jobs (slurm: the report is
    written by the last job)."""
    step_lists = PipelineBuilder(config).step_lists()
    if not run_step_lists(step_lists, config, on_step=on_step):
        return None
    with open(
        os.path.join(CorpusLayout(config.output_dir).report, "report.json"), encoding="utf-8"
    ) as handle:
        return json.load(handle)
