"""Pretraining that continues on another number of processes: the same global batch, the same data order.

A week-long run loses and regains nodes: started on 8 GPUs, it must go on on 6 or on 16. The stream's order
depends only on the global batch index and on how many batches make one optimizer step (`MixtureStream`:
batch `b` belongs to step `b // (processes x grad_accum)`, its rows, masking and mixture weights are seeded by
`b`), so a run keeps its data order, learning-rate schedule and token budget exactly when `processes x
grad_accum` stays the same. That product is fixed when an output directory is first trained in: the recipe's
`grad_accum` at the process count recorded then (`processes.json`), for every later call and phase. A call
with another process count accumulates `grad_accum x recorded / processes` batches per step, and where that
is not a whole number says so in one line.

What cannot follow: FSDP shards the optimizer state by process, and a streaming source's reading positions
are saved per process and DataLoader worker; those resume on the process count that saved them, and say so.
"""

from __future__ import annotations

import json
from pathlib import Path

from rexbert_core.safe_outputs import atomic_write_json
from rexbert_core.typed_config import ConfigError, DataError

from .distributed import barrier, is_main_process, world_size

__all__ = ["PROCESSES_FILENAME", "check_resume_processes", "elastic_grad_accum", "reference_processes"]

PROCESSES_FILENAME = "processes.json"


def reference_processes(output: Path) -> int:
    """The process count the global batch was fixed at in `output` (recorded by the first call; every
    process calls this)."""
    path = Path(output) / PROCESSES_FILENAME
    if is_main_process() and not path.is_file():
        atomic_write_json(path, {"processes": world_size()})
    barrier()
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["processes"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(
            f"{path}: unreadable; it records the process count this output was started on"
        ) from None


def elastic_grad_accum(phase_name: str, grad_accum: int, reference: int, processes: int) -> int:
    """Batches each process accumulates per step so that `processes x it == reference x grad_accum`."""
    batches = grad_accum * reference
    if batches % processes:
        divisors = [n for n in range(1, batches + 1) if batches % n == 0]
        raise ConfigError(
            f"phase {phase_name}: this output trains {batches} batches per step ({reference} process(es) x "
            f"phases.{phase_name}.grad_accum={grad_accum} when it was started), which {processes} processes cannot "
            f"share evenly; run on {', '.join(map(str, divisors))} process(es), or start a new output directory"
        )
    return batches // processes


def check_resume_processes(checkpoint: Path, saved: int, processes: int, training_args) -> None:
    """Refuse resuming an FSDP checkpoint on another process count (its optimizer state is sharded)."""
    if saved != processes and training_args.fsdp:
        raise ConfigError(
            f"{checkpoint} was saved by {saved} FSDP processes, whose optimizer state is sharded by process: "
            f"resume it on {saved} processes (DDP checkpoints resume on any count that divides the batch)"
        )
