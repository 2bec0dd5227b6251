"""Which process does what when pretraining runs on several (torchrun, accelerate launch).

Every process runs the same `pretrain` call. Shared artefacts (the tokenizer, the lexicon, each phase's
final model, the logs, summaries and plots) are written once, by the main process, while the others wait
at a barrier and then read them; the training data is split by the `MixtureStream` (each process trains on
its own global batches) and the per-source metrics are summed over processes before they are logged.

The process group is accelerate's `PartialState`, set up here before the Trainer exists (the tokenizer is
built before the first `TrainingArguments`), with the same arguments the Trainer uses: on a machine without
CUDA (or MPS) it is the CPU backend (gloo), which transformers only picks with `use_cpu=True`; so no flag is
needed for `torchrun --nproc_per_node 2` on CPUs.
"""

from __future__ import annotations

import contextlib
import logging

import torch

__all__ = [
    "accelerator_available",
    "barrier",
    "is_main_process",
    "main_process_first",
    "process_state",
    "world_size",
]


def accelerator_available() -> bool:
    return torch.cuda.is_available() or (hasattr(torch.backends, "mps") and torch.backends.mps.is_available())


def process_state():
    """accelerate's `PartialState` (one per process; it initialises the process group under a launcher)."""
    from accelerate import PartialState

    return PartialState(cpu=not accelerator_available())


def is_main_process() -> bool:
    return process_state().is_main_process


def world_size() -> int:
    return process_state().num_processes


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    process_state().wait_for_everyone()


@contextlib.contextmanager
def main_process_first():
    """The main process runs the block first (writing what the others then read in the same block)."""
    with process_state().main_process_first():
        yield


def quiet_other_processes() -> None:
    """Only the main process logs at info level (the others would repeat every line)."""
    if not is_main_process():
        for name in ("trainers", "rexbert"):
            logging.getLogger(name).setLevel(logging.WARNING)
