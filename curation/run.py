"""`run_pipeline`: build the step lists of a curation config and run them on its executor, in an output
directory the run owns.

The output directory is locked while the pipeline runs (a second curation into it is refused, naming the
holder; with the Slurm executor, until the submitted jobs have ended). It records the config it was made with:
datatrove skips finished tasks on a rerun, which is only right for the same config, so a changed config
is refused, naming the changed fields; `restart=True` deletes exactly what an earlier curation wrote there.
The settings that do not change the output (`workers`, `progress`, `executor`) may change between runs.

`output_dir` may also be a URL (s3://, hf://, any fsspec protocol): every step, the rejects and the report
write through datatrove's `DataFolder`, and the ownership marker is kept there too (see `_lock`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable

from datatrove.io import get_datafolder

from curation.config import CurationConfig
from curation.executors import run_step_lists
from curation.layout import OUTPUT_ENTRIES, REPORT_FILENAME, CorpusLayout
from curation.pipeline import PipelineBuilder
from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory
from rexbert_core.typed_config import to_mapping

__all__ = ["output_record", "run_pipeline"]

OUTPUT_NEUTRAL = ("workers", "progress", "executor")

logger = logging.getLogger(__name__)


def output_record(config: CurationConfig) -> dict:
    """The parts of a config that decide what the pipeline writes (its fingerprint is kept with the output)."""
    return {k: v for k, v in to_mapping(config).items() if k not in OUTPUT_NEUTRAL}


def run_pipeline(
    config: CurationConfig, on_step: Callable[[int, int, str], None] | None = None, *, restart: bool = False
) -> dict | None:
    """Run (or resume) every step list on the configured executor. Returns the corpus report when the
    executor runs to completion here (local, ray); None when it only submitted jobs (slurm: the report is
    written by the last job)."""
    with _lock(config.output_dir) as lock:
        owned = OwnedDirectory.claim(config.output_dir, "curation", output_record(config), restart=restart)
        owned.created(*OUTPUT_ENTRIES)
        step_lists = PipelineBuilder(config).step_lists()
        logs = CorpusLayout(config.output_dir).logs
        outcome = run_step_lists(step_lists, logs, config.executor, config.workers, on_step=on_step)
        if not outcome:
            if lock is not None:  # the jobs hold the directory until they end
                lock.hold_for_slurm_jobs(outcome.slurm_jobs)
            return None
    with get_datafolder(CorpusLayout(config.output_dir).report).open(
        REPORT_FILENAME, encoding="utf-8"
    ) as handle:
        return json.load(handle)


def _lock(output_dir: str):
    """The directory lock of a local output. An object store has no lock to take: a remote output is
    claimed (config fingerprint, created entries) but two curations into it are not stopped."""
    if "://" not in output_dir:
        return DirectoryLock(output_dir)
    logger.warning("%s is remote and cannot be locked: run one curation at a time into it", output_dir)
    return contextlib.nullcontext()
