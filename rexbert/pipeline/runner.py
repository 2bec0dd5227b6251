"""Running the stages of `rexbert run` in order, skipping those already done, into one output directory.

Each finished stage writes `stages/<stage>.done`, so rerunning the same command after an interruption
skips finished stages, and the pretraining stage continues an interrupted phase from its last complete
checkpoint (data stream and RNG state included). The resolved config is saved as `run_config.yaml`; a
rerun with a different config into the same directory is refused, naming the sections that differ.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import yaml

from typed_config import ConfigError, to_mapping

from .config import RunConfig
from .layout import Layout
from .stages import STAGE_FUNCTIONS, STAGES

__all__ = ["restart", "run"]

logger = logging.getLogger("rexbert.run")


def _check_same_config(record: dict, layout: Layout) -> None:
    """Refuse to continue a run that was started with another config."""
    if not layout.config.is_file():
        return
    previous = yaml.safe_load(layout.config.read_text(encoding="utf-8"))
    if previous != record:
        changed = sorted(k for k in set(previous) | set(record) if previous.get(k) != record.get(k))
        raise ConfigError(
            f"{layout.root} holds a run started with a different config (sections {changed} "
            "differ); use another --output, or --restart to start this one over"
        )


def restart(layout: Layout) -> None:
    """Remove what an earlier run wrote into the output directory (only the run's own paths)."""
    for path in (
        layout.stages,
        layout.data,
        layout.classifier.parent,
        layout.curation,
        layout.pretrain,
        layout.model,
        layout.eval,
    ):
        shutil.rmtree(path, ignore_errors=True)
    for path in (layout.config, layout.report):
        path.unlink(missing_ok=True)


def run(config: RunConfig, output: str | Path, *, stop_after: str | None = None) -> dict[str, dict]:
    """Run the stages not yet done, in order; returns each stage's outputs (from its done-marker)."""
    import torch

    layout = Layout(Path(output).resolve())
    layout.root.mkdir(parents=True, exist_ok=True)
    record = to_mapping(config)
    _check_same_config(record, layout)
    layout.config.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    layout.stages.mkdir(exist_ok=True)
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _run_stages(config, layout, STAGES[: last + 1])
    finally:
        torch.set_num_threads(threads)


def _run_stages(config: RunConfig, layout: Layout, stages: tuple[str, ...]) -> dict[str, dict]:
    outputs = {}
    for index, stage in enumerate(stages, 1):
        if layout.done_marker(stage).is_file():
            logger.info("[%d/%d] %s: done earlier, skipping", index, len(STAGES), stage)
        else:
            logger.info("[%d/%d] %s ...", index, len(STAGES), stage)
            started = time.perf_counter()
            result = STAGE_FUNCTIONS[stage](config, layout)
            seconds = time.perf_counter() - started
            marker = {
                "stage": stage,
                "seconds": round(seconds, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "outputs": result,
            }
            layout.done_marker(stage).write_text(json.dumps(marker, indent=1, default=str), encoding="utf-8")
            logger.info("[%d/%d] %s finished in %.1f s", index, len(STAGES), stage, seconds)
        outputs[stage] = layout.outputs_of(stage)
    return outputs
