"""Running the stages of `rexbert run` in order, skipping those already done, into one output directory.

The run owns its directory (`safe_outputs`): it locks it for as long as it runs (a second run into the
same directory is refused, naming the holder), refuses a directory it did not create, and refuses to
continue with a changed config, naming the changed fields; `restart=True` (`--restart`) deletes exactly
what an earlier run created there. Each finished stage writes `stages/<stage>.done` atomically, so rerunning
the same command after an interruption skips finished stages, and the pretraining stage continues an
interrupted phase from its last complete checkpoint (data stream and RNG state included). The resolved
config is also written as `run_config.yaml`, for reading.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import yaml

from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory, atomic_write_json, atomic_write_text
from rexbert_core.typed_config import to_mapping

from .config import RunConfig
from .layout import STAGE_OUTPUTS, Layout
from .stages import STAGE_FUNCTIONS, STAGES

__all__ = ["run"]

logger = logging.getLogger("rexbert.run")


def run(
    config: RunConfig, output: str | Path, *, stop_after: str | None = None, restart: bool = False
) -> dict[str, dict]:
    """Run the stages not yet done, in order; returns each stage's outputs (from its done-marker)."""
    import torch

    layout = Layout(Path(output).resolve())
    record = to_mapping(config)
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1
    with DirectoryLock(layout.root):
        owned = OwnedDirectory.claim(layout.root, "run", record, restart=restart)
        owned.created(layout.config.name, layout.stages.name)
        atomic_write_text(layout.config, yaml.safe_dump(record, sort_keys=False))
        layout.stages.mkdir(exist_ok=True)
        threads = torch.get_num_threads()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            return _run_stages(config, layout, owned, STAGES[: last + 1])
        finally:
            torch.set_num_threads(threads)


def _run_stages(
    config: RunConfig, layout: Layout, owned: OwnedDirectory, stages: tuple[str, ...]
) -> dict[str, dict]:
    outputs = {}
    for index, stage in enumerate(stages, 1):
        if layout.done_marker(stage).is_file():
            logger.info("[%d/%d] %s: done earlier, skipping", index, len(STAGES), stage)
        else:
            logger.info("[%d/%d] %s ...", index, len(STAGES), stage)
            owned.created(*STAGE_OUTPUTS[stage])
            started = time.perf_counter()
            result = STAGE_FUNCTIONS[stage](config, layout)
            seconds = time.perf_counter() - started
            marker = {
                "stage": stage,
                "seconds": round(seconds, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "outputs": result,
            }
            atomic_write_json(layout.done_marker(stage), marker)
            logger.info("[%d/%d] %s finished in %.1f s", index, len(STAGES), stage, seconds)
        outputs[stage] = layout.outputs_of(stage)
    return outputs
