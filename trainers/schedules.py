"""Schedules driven by training progress: learning rate, masking rate, batch size.

Learning rate: the recipe's three schedules are all transformers' warmup-stable-decay schedule
(`lr_scheduler_type="warmup_stable_decay"`, `transformers.get_wsd_schedule`), so the Trainer builds them
itself; `scheduler_arguments` maps a recipe's `lr` section onto it:

- `constant`: linear warmup, then 1 (no decay).
- `wsd` (warmup-stable-decay): linear warmup to 1, flat, then a decay over the last `decay_fraction` of the
  steps down to `min_ratio`, shaped `linear`, `cosine` or `1-sqrt`.
- `1-sqrt`: linear warmup, then `1 - sqrt(t)` decay over all remaining steps (a WSD with no stable part),
  the annealing shape used for RexBERT's last phase.

Warmup multiplies by `step / warmup_steps` (transformers' convention). Closed forms of the decay, with `t`
the fraction of the decay done and `m = min_ratio`: linear `m + (1 - m)(1 - t)`, cosine
`m + (1 - m)(1 + cos(pi t)) / 2`, 1-sqrt `m + (1 - m)(1 - sqrt(t))`.

Masking rate, guidance and mixture weights move with progress (`ScalarSchedule`, `interpolate`), and the
batch size can warm up (`BatchSizeSchedule`): transformers has no equivalent for these, they live here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rexbert_core.typed_config import ConfigError

__all__ = [
    "DECAY_SHAPES",
    "INTERPOLATIONS",
    "LR_SCHEDULES",
    "BatchSizeSchedule",
    "ScalarSchedule",
    "interpolate",
    "scheduler_arguments",
]

LR_SCHEDULES = ("constant", "wsd", "1-sqrt")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")
INTERPOLATIONS = ("constant", "linear", "cosine")


def scheduler_arguments(
    schedule: str,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    decay_fraction: float = 0.1,
    decay_shape: str = "1-sqrt",
    min_lr_ratio: float = 0.0,
) -> dict:
    """`TrainingArguments` fields that make the Trainer build `schedule` (see the module docstring)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {LR_SCHEDULES}")
    if decay_shape not in DECAY_SHAPES:
        raise ValueError(f"unknown decay shape {decay_shape!r}; choose one of {DECAY_SHAPES}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps={warmup_steps} must lie in [0, total_steps={total_steps}]")
    if schedule == "constant":
        decay_steps = 0
    elif schedule == "1-sqrt":
        decay_steps, decay_shape = total_steps - warmup_steps, "1-sqrt"
    else:
        decay_steps = min(round(decay_fraction * total_steps), total_steps - warmup_steps)
    return {
        "lr_scheduler_type": "warmup_stable_decay",
        "warmup_steps": warmup_steps,
        "lr_scheduler_kwargs": {  # the stable part is what remains of `total_steps` (the Trainer passes it)
            "num_decay_steps": decay_steps,
            "decay_type": decay_shape,
            "min_lr_ratio": min_lr_ratio,
        },
    }


def interpolate(start: float, end: float, progress: float, shape: str = "linear") -> float:
    """Value between `start` (progress 0) and `end` (progress 1), in the given shape."""
    progress = min(max(progress, 0.0), 1.0)
    if shape == "constant":
        return start
    if shape == "linear":
        return start + (end - start) * progress
    if shape == "cosine":
        return start + (end - start) * 0.5 * (1 - math.cos(math.pi * progress))
    raise ValueError(f"unknown interpolation {shape!r}; choose one of {INTERPOLATIONS}")


@dataclass(frozen=True)
class ScalarSchedule:
    """A fraction (masking rate, guidance weight) moving linearly from `start` to `end` over training.

    In a recipe it is written as a number (constant) or `[start, end]`; `from_config` reads that form and
    checks it once (both values in [0, 1]), `to_config` writes it back. The phase spec holds the schedule,
    the stream evaluates it per batch and hands the value to the collator."""

    start: float
    end: float
    shape: str = "linear"

    @classmethod
    def constant(cls, value: float) -> ScalarSchedule:
        return cls(float(value), float(value), "constant")

    @classmethod
    def from_config(cls, value, where: str) -> ScalarSchedule:
        """A number (constant) or `[start, end]` (linear), every value in [0, 1]."""
        values = value if isinstance(value, (list, tuple)) else [value]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if len(values) not in (1, 2) or not numeric or not all(0 <= v <= 1 for v in values):
            raise ConfigError(f"{where} must be a number in [0, 1] or [start, end], got {value}")
        return cls.constant(values[0]) if len(values) == 1 else cls(float(values[0]), float(values[1]))

    def to_config(self) -> float | list[float]:
        return self.start if self.start == self.end else [self.start, self.end]

    def __call__(self, progress: float) -> float:
        return interpolate(self.start, self.end, progress, self.shape)

    @property
    def active(self) -> bool:
        """Above zero at some point of training."""
        return max(self.start, self.end) > 0


@dataclass(frozen=True)
class BatchSizeSchedule:
    """Batch-size warmup: `start` rows per batch rising linearly to `end` over `warmup_steps`
    optimizer steps (rounded down to a multiple of `multiple`, never below it)."""

    end: int
    start: int | None = None
    warmup_steps: int = 0
    multiple: int = 1

    def __call__(self, step: int) -> int:
        if self.start is None or self.warmup_steps <= 0 or step >= self.warmup_steps:
            return self.end
        size = self.start + (self.end - self.start) * step / self.warmup_steps
        return max(self.multiple, int(size) // self.multiple * self.multiple)
