"""Running the stages of a planned run in order, skipping those already done, into one output directory.

The run owns its directory (`safe_outputs`): it locks it for as long as it runs (a second run into the
same directory is refused, naming the holder), refuses a directory it did not create, and refuses to
continue with a changed config, naming the changed fields; `restart=True` (`--restart`) deletes exactly
what an earlier run created there (the entries each stage declares). Each finished stage writes
`stages/<stage>.done` atomically, so rerunning the same command after an interruption skips finished
stages, and the pretraining stage continues an interrupted phase from its last complete checkpoint (data
stream and RNG state included). The resolved config is written as `run_config.yaml`, with the seed each
stage got and where it came from.
"""

from __future__ import annotations

import logging
import time

import yaml

from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory, atomic_write_json, atomic_write_text
from rexbert_core.typed_config import to_mapping

from .stage import RunPlan

__all__ = ["run"]

logger = logging.getLogger("rexbert.run")

CONFIG_HEADER = """\
# The run config as resolved: the config file (over what it extends), then --set overrides; relative paths
# made absolute. `resolved.seeds`: the seed each stage got, and the field it came from (a section's own seed
# wins over the run's `seed`, which wins over a library's default, a recipe file's included).
"""


def run(plan: RunPlan, *, stop_after: str | None = None, restart: bool = False) -> dict[str, dict]:
    """Run the stages not yet done, in order; returns each stage's outputs (from its done-marker)."""
    import torch

    layout, names = plan.layout, plan.stage_names
    record = to_mapping(plan.config)
    last = names.index(stop_after) if stop_after else len(names) - 1
    with DirectoryLock(layout.root):
        owned = OwnedDirectory.claim(layout.root, "run", record, restart=restart)
        owned.created(layout.config.name, layout.stages.name)
        text = yaml.safe_dump({**record, "resolved": plan.resolved}, sort_keys=False)
        atomic_write_text(layout.config, CONFIG_HEADER + text)
        layout.stages.mkdir(exist_ok=True)
        threads = torch.get_num_threads()
        if plan.config.threads:
            torch.set_num_threads(plan.config.threads)
        try:
            return _run_stages(plan, owned, last + 1)
        finally:
            torch.set_num_threads(threads)


def _run_stages(plan: RunPlan, owned: OwnedDirectory, count: int) -> dict[str, dict]:
    layout, total = plan.layout, len(plan.stages)
    outputs = {}
    for index, stage in enumerate(plan.stages[:count], 1):
        if layout.done_marker(stage.name).is_file():
            logger.info("[%d/%d] %s: done earlier, skipping", index, total, stage.name)
        else:
            logger.info("[%d/%d] %s ...", index, total, stage.name)
            owned.created(*stage.entries(layout))
            started = time.perf_counter()
            result = stage.run(plan.jobs[stage.name], plan)
            seconds = time.perf_counter() - started
            marker = {
                "stage": stage.name,
                "seconds": round(seconds, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "outputs": result,
            }
            atomic_write_json(layout.done_marker(stage.name), marker)
            logger.info("[%d/%d] %s finished in %.1f s", index, total, stage.name, seconds)
        outputs[stage.name] = layout.outputs_of(stage.name)
    return outputs
