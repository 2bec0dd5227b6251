"""Schedules driven by training progress: learning rate, masking rate, batch size.

Learning-rate schedules are multiplier functions of the optimizer step for `torch.optim.lr_scheduler.
LambdaLR` (the Trainer's own schedulers are built the same way):

- `constant`: linear warmup, then 1.
- `wsd` (warmup-stable-decay): linear warmup to 1, flat, then a decay over the last
  `decay_fraction` of the steps down to `min_lr_ratio`, shaped `linear`, `cosine` or `1-sqrt`.
- `1-sqrt`: linear warmup, then `1 - sqrt(t)` decay over all remaining steps (a WSD with no
  stable part), the annealing shape used for RexBERT's last phase.

Warmup multiplies by `(step + 1) / warmup_steps` (the first optimizer step already moves the
weights). Closed forms of the decay, with `t` the fraction of the decay done and `m = min_lr_ratio`:
linear `1 - (1 - m) t`, cosine `m + (1 - m)(1 + cos(pi t)) / 2`, 1-sqrt `m + (1 - m)(1 - sqrt(t))`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

__all__ = [
    "DECAY_SHAPES",
    "INTERPOLATIONS",
    "LR_SCHEDULES",
    "BatchSizeSchedule",
    "ScalarSchedule",
    "decay_factor",
    "interpolate",
    "lr_lambda",
]

LR_SCHEDULES = ("constant", "wsd", "1-sqrt")
DECAY_SHAPES = ("linear", "cosine", "1-sqrt")
INTERPOLATIONS = ("constant", "linear", "cosine")


def decay_factor(t: float, shape: str, min_ratio: float = 0.0) -> float:
    """Multiplier after a fraction `t` in [0, 1] of a decay of the given shape."""
    t = min(max(t, 0.0), 1.0)
    if shape == "linear":
        remaining = 1 - t
    elif shape == "cosine":
        remaining = 0.5 * (1 + math.cos(math.pi * t))
    elif shape == "1-sqrt":
        remaining = 1 - math.sqrt(t)
    else:
        raise ValueError(f"unknown decay shape {shape!r}; choose one of {DECAY_SHAPES}")
    return min_ratio + (1 - min_ratio) * remaining


def _lr_multiplier(
    step: int, *, total_steps: int, warmup_steps: int, decay_steps: int, shape: str, min_ratio: float
) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_start = total_steps - decay_steps
    if decay_steps <= 0 or step < decay_start:
        return 1.0
    return decay_factor((step - decay_start) / decay_steps, shape, min_ratio)


def lr_lambda(
    schedule: str,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    decay_fraction: float = 0.1,
    decay_shape: str = "1-sqrt",
    min_lr_ratio: float = 0.0,
) -> Callable[[int], float]:
    """LR multiplier of `schedule` (see the module docstring) as a picklable function of the step."""
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
        if not 0 <= decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction}")
        decay_steps = min(round(decay_fraction * total_steps), total_steps - warmup_steps)
    return partial(
        _lr_multiplier,
        total_steps=total_steps,
        warmup_steps=warmup_steps,
        decay_steps=decay_steps,
        shape=decay_shape,
        min_ratio=min_lr_ratio,
    )


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
    """A scalar (masking rate, guidance weight) moving from `start` to `end` over training."""

    start: float
    end: float
    shape: str = "linear"

    @classmethod
    def parse(cls, value: float | list | tuple, shape: str = "linear") -> ScalarSchedule:
        """A number means constant; a pair `[start, end]` is interpolated."""
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ValueError(f"a scheduled value is a number or [start, end], got {value!r}")
            return cls(float(value[0]), float(value[1]), shape)
        return cls(float(value), float(value), "constant")

    def __call__(self, progress: float) -> float:
        return interpolate(self.start, self.end, progress, self.shape)

    def describe(self) -> float | list[float]:
        return self.start if self.start == self.end else [self.start, self.end]


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
