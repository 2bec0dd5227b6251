"""Curriculum sampling: a mixture of named sources whose weights follow training progress.

`MixtureSchedule` gives the weight of every source as a function of progress in [0, 1]: a list of
pieces, each moving from `start` to `end` weights (constant, linear or cosine) until its `until`
progress. `MixtureStream` turns packed sources into a stream of collated MLM batches:

- batch `b` draws its rows' sources from the weights at its progress, with a generator seeded by
  `(seed, b)`, and masks them with a generator seeded the same way; every source is read in order
  (map-style sources reshuffled per epoch from the seed). So the whole stream is a pure function of
  the seed, the schedules and the data, and the number of rows taken from each source before batch
  `b` (the `MixtureState`) is all a resumed run needs to continue exactly where it stopped.
- `trainers.stream_checkpoint.MixtureStateCallback` writes that state as `mixture_state.json` into
  every checkpoint and restores it when training resumes.
- A source that runs dry either starts a new epoch (`on_exhausted="recycle"`, logged and counted)
  or stops training with `SourceExhaustedError` (`on_exhausted="stop"`); each source is read by a
  `trainers.cursors.SourceCursor`.

Batch sizes (for batch-size warmup), masking rate and guidance weight are schedules of progress
too, evaluated per batch, so they need no extra state.

With several training processes (torchrun / accelerate), batch indices are global: process `r` of
`n` trains on batches `r, r + n, r + 2n, ...` (`shard`), passing over the other processes' rows (by
index arithmetic for random-access sources: nothing of them is read), so the processes together train on
exactly the stream one process would have produced, and every process can save and restore the same state.
Resuming positions every random-access source directly at its row count: its cost does not grow with the
number of rows already trained on.

Streaming sources cannot be positioned by arithmetic. Each process reads its own share of their files (and
each DataLoader worker its own files within it), so no process reads or tokenizes another's rows. Every
batch carries its readers' `StreamPosition`s (built on `IterableDataset.state_dict()`); the trainer records
those of the batches it trained on and each process saves them in the checkpoint
(`stream_positions-<process>.json`), so a resume re-reads one document per source and worker instead of
every row trained on. With one process and no workers the stream is the one a single reader produces.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rexbert_core.typed_config import DataError

from .cursors import ON_EXHAUSTED, SourceCursor
from .packing import PackedSource, StreamingPackedSource, StreamPosition
from .schedules import INTERPOLATIONS, BatchSizeSchedule, ScalarSchedule, interpolate

__all__ = [
    "MixturePiece",
    "MixtureSchedule",
    "MixtureState",
    "MixtureStream",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MixturePiece:
    """Weights moving from `start` to `end` (shape `constant`, `linear` or `cosine`) until `until`."""

    start: Mapping[str, float]
    end: Mapping[str, float]
    shape: str = "linear"
    until: float = 1.0


class MixtureSchedule:
    """Source weights as a function of training progress, normalised to sum to 1."""

    def __init__(self, pieces: list[MixturePiece]):
        if not pieces:
            raise ValueError("a mixture schedule needs at least one piece")
        self.pieces = pieces
        self.sources: tuple[str, ...] = tuple(dict.fromkeys(n for p in pieces for n in (*p.start, *p.end)))
        previous = 0.0
        for piece in pieces:
            if piece.shape not in INTERPOLATIONS:
                raise ValueError(f"unknown mixture shape {piece.shape!r}; choose one of {INTERPOLATIONS}")
            if not previous < piece.until <= 1.0:
                raise ValueError(
                    f"mixture pieces must end at increasing progress in (0, 1], got {piece.until}"
                )
            for weights in (piece.start, piece.end):
                if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                    raise ValueError(f"mixture weights must be >= 0 with a positive sum, got {dict(weights)}")
            previous = piece.until
        if previous != 1.0:
            raise ValueError(f"the last mixture piece must end at progress 1.0, not {previous}")

    @classmethod
    def constant(cls, weights: Mapping[str, float]) -> MixtureSchedule:
        return cls([MixturePiece(weights, weights, "constant")])

    @classmethod
    def interpolated(cls, start: Mapping[str, float], end: Mapping[str, float], shape: str = "linear"):
        return cls([MixturePiece(start, end, shape)])

    def weights(self, progress: float) -> np.ndarray:
        """Normalised weights over `self.sources` at `progress` (clipped to [0, 1])."""
        progress = min(max(progress, 0.0), 1.0)
        begin = 0.0
        for piece in self.pieces:
            if progress <= piece.until or piece is self.pieces[-1]:
                local = (progress - begin) / (piece.until - begin)
                raw = np.array(
                    [
                        interpolate(piece.start.get(s, 0.0), piece.end.get(s, 0.0), local, piece.shape)
                        for s in self.sources
                    ]
                )
                return raw / raw.sum()
            begin = piece.until
        raise AssertionError("unreachable: the last piece ends at 1.0")

    def as_dict(self, progress: float) -> dict[str, float]:
        return dict(zip(self.sources, self.weights(progress).tolist()))


@dataclass
class MixtureState:
    """Where the stream stands before batch `batch_index`: rows taken so far from each source (saved in every
    checkpoint by `trainers.stream_checkpoint`)."""

    batch_index: int
    rows_taken: dict[str, int]
    seed: int
    epochs: dict[str, int] = field(default_factory=dict)


def _seed_for(*parts: int) -> int:
    """A 63-bit seed derived from integers (numpy's SeedSequence mixes them well)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, dtype=np.uint64)[0] >> 1)


class MixtureStream(torch.utils.data.IterableDataset):
    """Infinite stream of collated MLM batches drawn from named sources by a mixture schedule.

    Args:
        sources: packed sources by name; must cover every source the schedule names.
        schedule: the mixture weights over progress.
        collator: a `GuidedMLMCollator` (called with per-batch mask rate, guidance and generator).
        batch_size: rows per batch, or a `BatchSizeSchedule` for batch-size warmup.
        max_steps: optimizer steps of the run (progress = step / max_steps).
        grad_accum: batches per optimizer step.
        seed: seeds the source draws, the per-epoch shuffles and the masking.
        mask_rate / guidance: `ScalarSchedule`s over progress (a number: constant), evaluated per batch and
            handed to the collator; the stream is their one owner.
        on_exhausted: "recycle" or "stop" (see the module docstring).
    """

    def __init__(
        self,
        sources: Mapping[str, PackedSource],
        schedule: MixtureSchedule,
        collator,
        *,
        batch_size: int | BatchSizeSchedule,
        max_steps: int,
        grad_accum: int = 1,
        seed: int = 0,
        mask_rate: float | ScalarSchedule,
        guidance: float | ScalarSchedule = 0.0,
        on_exhausted: str = "recycle",
    ):
        missing = [name for name in schedule.sources if name not in sources]
        if missing:
            raise KeyError(
                f"the mixture names sources {missing} that were not given; sources: {sorted(sources)}"
            )
        if on_exhausted not in ON_EXHAUSTED:
            raise ValueError(f"on_exhausted must be one of {ON_EXHAUSTED}, got {on_exhausted!r}")
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.source_names = schedule.sources
        self.sources = {name: sources[name] for name in self.source_names}
        self.schedule, self.collator = schedule, collator
        self.batch_size = (
            batch_size if isinstance(batch_size, BatchSizeSchedule) else BatchSizeSchedule(batch_size)
        )
        self.max_steps, self.grad_accum, self.seed = max_steps, grad_accum, seed
        self.mask_rate = _as_schedule(mask_rate)
        self.guidance = _as_schedule(guidance)
        self.on_exhausted = on_exhausted
        self.num_shards, self.shard_index = 1, 0
        self._start = MixtureState(0, {name: 0 for name in self.source_names}, seed)
        self._replayed = self._start
        self.cursors: dict[str, SourceCursor] = {}
        # streaming sources: batches carry their readers' positions (`report_positions`), the trainer
        # records the positions of the batches it trained on, and a resume restores them per worker
        self.report_positions = False
        self.positions: dict[int, dict[str, StreamPosition]] = {}
        self.consumed: dict[int, dict[str, dict]] = {}

    def shard(self, num_shards: int, shard_index: int) -> None:
        """Make this process train on global batches `shard_index + k * num_shards`."""
        if not 0 <= shard_index < num_shards:
            raise ValueError(f"shard_index {shard_index} is not in [0, {num_shards})")
        self.num_shards, self.shard_index = num_shards, shard_index
        self._replayed = self._start  # replays depend on the step of each batch, hence on the shards

    # ---- pure functions of the batch index ------------------------------------------------------

    def step_of(self, batch_index: int) -> int:
        """Optimizer step that global batch `batch_index` belongs to."""
        return batch_index // self.num_shards // self.grad_accum

    def progress(self, batch_index: int) -> float:
        return min(self.step_of(batch_index) / self.max_steps, 1.0)

    def batch_plan(self, batch_index: int) -> np.ndarray:
        """Source index of each row of batch `batch_index`."""
        rng = np.random.default_rng(_seed_for(self.seed, batch_index))
        size = self.batch_size(self.step_of(batch_index))
        return rng.choice(
            len(self.source_names), size=size, p=self.schedule.weights(self.progress(batch_index))
        )

    def state_at(self, batch_index: int) -> MixtureState:
        """The state before batch `batch_index`, by replaying the (cheap) source draws."""
        base = self._replayed if self._replayed.batch_index <= batch_index else self._start
        if base.batch_index > batch_index:
            raise ValueError(
                f"cannot rewind the stream to batch {batch_index}: it starts at {base.batch_index}"
            )
        taken = np.array([base.rows_taken[name] for name in self.source_names], dtype=np.int64)
        for b in range(base.batch_index, batch_index):
            taken += np.bincount(self.batch_plan(b), minlength=len(self.source_names))
        rows_taken = dict(zip(self.source_names, taken.tolist()))
        epochs = {
            name: rows_taken[name] // src.finite_rows for name, src in self.sources.items() if src.finite_rows
        }
        self._replayed = MixtureState(batch_index, rows_taken, self.seed, epochs)
        return self._replayed

    # ---- resuming -------------------------------------------------------------------------------

    def restore(self, state: MixtureState) -> None:
        """Continue from `state` (read from a checkpoint) on the next iteration."""
        if state.seed != self.seed:
            raise ValueError(
                f"mixture state was saved with seed {state.seed}, this run uses seed {self.seed}"
            )
        unknown = sorted(set(state.rows_taken) ^ set(self.source_names))
        if unknown:
            raise ValueError(f"mixture state and this run disagree on the sources {unknown}")
        self._start = self._replayed = MixtureState(
            state.batch_index, dict(state.rows_taken), state.seed, dict(state.epochs)
        )
        logger.info(
            "mixture stream resumes at batch %d with rows taken %s", state.batch_index, state.rows_taken
        )

    # ---- streaming sources: positions per reader -----------------------------------------------

    @property
    def streaming_sources(self) -> list[str]:
        return [name for name, source in self.sources.items() if isinstance(source, StreamingPackedSource)]

    def _reader(self, name: str, workers: int) -> tuple[PackedSource, bool]:
        """(the source as this process reads it, whether it reads every row: then it reads and drops the
        rows of other processes' and workers' batches)."""
        source = self.sources[name]
        if not isinstance(source, StreamingPackedSource):
            return source, True
        share = source.for_process(self.num_shards, self.shard_index)
        return share, not (share.split or (workers > 1 and share.splits_by_worker))

    def check_readers(self, workers: int) -> None:
        """Refuse DataLoader workers that a streaming source's files cannot all keep busy."""
        for name in self.streaming_sources:
            share, _ = self._reader(name, workers)
            files = share.num_files
            if workers > 1 and share.splits_by_worker and files < workers:
                raise DataError(
                    f"source {name!r}: {files} file(s) per process cannot feed {workers} dataloader workers "
                    "(each worker reads whole files); use fewer workers or split the source into more files"
                )

    def positions_record(self, workers: int) -> dict:
        """This process's streaming positions after the batches it trained on (for its checkpoint)."""
        return {"processes": self.num_shards, "workers": max(workers, 1), "positions": self.consumed}

    def restore_positions(self, record: dict, workers: int) -> None:
        """Continue each worker's streaming sources from `record` (a `positions_record`)."""
        saved = (record["processes"], record["workers"])
        if saved != (self.num_shards, max(workers, 1)):
            raise DataError(
                f"the streaming sources' reading positions were saved by {saved[0]} process(es) x {saved[1]} "
                f"dataloader worker(s) each, this run has {self.num_shards} x {max(workers, 1)}: resume on "
                f"{saved[0]} process(es) with training_args.dataloader_num_workers={saved[1] if saved[1] > 1 else 0}"
            )
        workers = max(workers, 1)
        if (self._start.batch_index // self.num_shards) % workers:
            raise DataError(
                f"a resume at batch {self._start.batch_index} would hand the workers' files to other batches: "
                f"with {workers} dataloader workers, checkpoint every k steps with k x gradient accumulation "
                f"a multiple of {workers}"
            )
        self.consumed = {int(worker): dict(positions) for worker, positions in record["positions"].items()}
        self.positions = {
            worker: {name: StreamPosition(**position) for name, position in positions.items()}
            for worker, positions in self.consumed.items()
        }

    def record_consumed(self, report: dict) -> None:
        """A trained batch's `stream_positions`: its worker's sources stand there now."""
        self.consumed[int(report["worker"])] = report["positions"]

    # ---- iteration ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """This process's batches in order. In a DataLoader with W workers, worker w builds every W-th of
        them (the loader hands them out round-robin, so the order is the same); every worker passes over the
        rows of the batches it does not build (without reading them from a random-access source, or from a
        streaming source whose documents are split between processes and workers)."""
        worker = torch.utils.data.get_worker_info()
        workers, worker_index = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        state, positions = self._start, self.positions.get(worker_index, {})
        self.cursors = {}
        for name in self.source_names:
            source, shared = self._reader(name, workers)
            self.cursors[name] = SourceCursor(
                source, self.seed, state.rows_taken[name], self.on_exhausted, positions.get(name), shared
            )
        streaming = self.streaming_sources if self.report_positions else []
        own_batches = 0
        for batch_index in itertools.count(state.batch_index):
            if batch_index % self.num_shards == self.shard_index:
                own_batches += 1
                if (own_batches - 1) % workers == worker_index:
                    batch = self.make_batch(batch_index)
                    if streaming:
                        batch["stream_positions"] = {
                            "worker": worker_index,
                            "positions": {name: asdict(self.cursors[name].position) for name in streaming},
                        }
                    yield batch
                    continue
            for source_index in self.batch_plan(batch_index):  # another process's or worker's batch
                self.cursors[self.source_names[source_index]].skip()

    def make_batch(self, batch_index: int) -> dict[str, torch.Tensor]:
        """Read the rows of batch `batch_index` from the cursors and collate them."""
        rows = []
        for source_index in self.batch_plan(batch_index):
            row = self.cursors[self.source_names[source_index]].next()
            rows.append({**row, "source": int(source_index)})
        progress = self.progress(batch_index)
        generator = torch.Generator().manual_seed(_seed_for(self.seed, batch_index, 1))
        return self.collator(
            rows,
            mask_rate=self.mask_rate(progress),
            guidance=self.guidance(progress),
            generator=generator,
        )

    def describe(self, progress: float) -> dict[str, float]:
        """Schedule values at `progress`, for the training log."""
        values = {f"mixture/{name}": weight for name, weight in self.schedule.as_dict(progress).items()}
        values["mask_rate"] = self.mask_rate(progress)
        values["guidance"] = self.guidance(progress)
        values["batch_size"] = self.batch_size(int(progress * self.max_steps))
        return values


def _as_schedule(value: float | ScalarSchedule) -> ScalarSchedule:
    return value if isinstance(value, ScalarSchedule) else ScalarSchedule.constant(value)
