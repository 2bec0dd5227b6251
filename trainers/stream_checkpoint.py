"""The data stream's part of every Trainer checkpoint, and the callback that writes and reads it.

    mixture_state.json              the `MixtureState` after the last trained batch (every process computes
                                    the same one; the main process writes it)
    stream_positions-<process>.json each process's streaming readers' positions, per DataLoader worker

`MixtureStateCallback` writes them on every save and restores the stream from them when training resumes,
so a resumed run continues with exactly the batch an uninterrupted run would have trained on next.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from transformers import TrainerCallback

from rexbert_core.safe_outputs import atomic_write_json

from .elastic import check_resume_processes
from .mixture import MixtureState, MixtureStream

__all__ = [
    "MIXTURE_STATE_FILENAME",
    "MixtureStateCallback",
    "positions_file",
    "read_mixture_state",
    "saved_processes",
    "write_mixture_state",
]

logger = logging.getLogger(__name__)

MIXTURE_STATE_FILENAME = "mixture_state.json"


def write_mixture_state(state: MixtureState, directory: str | Path, processes: int = 1) -> Path:
    """`directory/mixture_state.json`, written atomically, with the number of processes that trained."""
    path = Path(directory) / MIXTURE_STATE_FILENAME
    atomic_write_json(path, {**asdict(state), "processes": processes})
    return path


def read_mixture_state(path: str | Path) -> MixtureState:
    """A `MixtureState` from `mixture_state.json` or the checkpoint directory holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / MIXTURE_STATE_FILENAME
    record = json.loads(path.read_text(encoding="utf-8"))
    record.pop("processes", None)
    return MixtureState(**record)


def saved_processes(path: str | Path) -> int:
    """How many processes trained up to the checkpoint holding `mixture_state.json` (1 when not recorded)."""
    path = Path(path)
    if path.is_dir():
        path = path / MIXTURE_STATE_FILENAME
    return int(json.loads(path.read_text(encoding="utf-8")).get("processes", 1))


def positions_file(checkpoint: Path, process: int) -> Path:
    return checkpoint / f"stream_positions-{process}.json"


class MixtureStateCallback(TrainerCallback):
    """Saves the stream's state (and the collator's saliency lexicon, if any) in every checkpoint and
    restores the state when training resumes.

    The state saved is the one before the first batch of the next optimizer step (batches fetched
    ahead by the data loader are not counted); every process computes the same one. On resume the
    checkpoint's `mixture_state.json` is read; without one (a checkpoint from elsewhere) the state is
    rebuilt by replaying the draws.
    """

    def __init__(self, stream: MixtureStream):
        self.stream = stream

    def _batches_done(self, state) -> int:
        """Global batches trained by all processes together after `state.global_step` steps."""
        return state.global_step * self.stream.grad_accum * self.stream.num_shards

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if self.stream.streaming_sources and checkpoint.is_dir():  # every process saves its own readers'
            record = self.stream.positions_record(args.dataloader_num_workers)
            atomic_write_json(positions_file(checkpoint, args.process_index), record)
        if state.is_world_process_zero:
            if checkpoint.is_dir():
                state_now = self.stream.state_at(self._batches_done(state))
                write_mixture_state(state_now, checkpoint, processes=self.stream.num_shards)
                if getattr(self.stream.collator, "lexicon", None) is not None:
                    self.stream.collator.lexicon.save(checkpoint)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:
            return
        saved = Path(args.output_dir) / f"checkpoint-{state.global_step}" / MIXTURE_STATE_FILENAME
        if saved.is_file():
            check_resume_processes(saved.parent, saved_processes(saved), self.stream.num_shards, args)
            mixture_state = read_mixture_state(saved)
            if mixture_state.batch_index != self._batches_done(state):
                raise ValueError(
                    f"{saved} is at batch {mixture_state.batch_index}, but the trainer resumes "
                    f"after {self._batches_done(state)} batches"
                )
        else:
            logger.warning(
                "no %s at step %d: rebuilding the mixture state by replay",
                MIXTURE_STATE_FILENAME,
                state.global_step,
            )
            mixture_state = self.stream.state_at(self._batches_done(state))
        self.stream.restore(mixture_state)
        positions = positions_file(saved.parent, args.process_index)
        if self.stream.streaming_sources and positions.is_file():
            record = json.loads(positions.read_text(encoding="utf-8"))
            self.stream.restore_positions(record, args.dataloader_num_workers)
