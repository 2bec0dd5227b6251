"""Learning-rate schedules (transformers' warmup-stable-decay scheduler built from a recipe's `lr`
section) against their closed forms; scalar, batch-size and mixture schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import get_scheduler

from rexbert_core.typed_config import ConfigError
from trainers.mixture import MixturePiece, MixtureSchedule
from trainers.schedules import BatchSizeSchedule, ScalarSchedule, scheduler_arguments


def lrs_of(schedule: str, total: int, **options) -> np.ndarray:
    """The learning-rate multiplier at every step, from the scheduler the Trainer builds for these args."""
    arguments = scheduler_arguments(schedule, total, **options)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler(
        arguments["lr_scheduler_type"],
        optimizer,
        num_warmup_steps=arguments["warmup_steps"],
        num_training_steps=total,
        scheduler_specific_kwargs=arguments["lr_scheduler_kwargs"],
    )
    values = []
    for _ in range(total):
        values.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return np.array(values)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_wsd_matches_closed_form(shape):
    total, warmup, floor = 100, 10, 0.1
    values = lrs_of(
        "wsd", total, warmup_steps=warmup, decay_fraction=0.3, decay_shape=shape, min_lr_ratio=floor
    )
    closed = {
        "linear": lambda t: 1 - t,
        "cosine": lambda t: 0.5 * (1 + math.cos(math.pi * t)),
        "1-sqrt": lambda t: 1 - math.sqrt(t),
    }[shape]
    for step in range(total):
        if step < warmup:
            expected = floor + (1 - floor) * step / warmup
        elif step < 70:
            expected = 1.0
        else:
            expected = floor + (1 - floor) * closed((step - 70) / 30)
        assert values[step] == pytest.approx(expected, abs=1e-12), step


def test_one_minus_sqrt_and_constant():
    total, warmup = 50, 5
    decay = lrs_of("1-sqrt", total, warmup_steps=warmup)
    constant = lrs_of("constant", total, warmup_steps=warmup)
    for step in range(warmup, total):
        assert decay[step] == pytest.approx(1 - math.sqrt((step - warmup) / (total - warmup)))
        assert constant[step] == 1.0
    assert decay[1] == constant[1] == pytest.approx(1 / warmup)
    with pytest.raises(ValueError, match="unknown lr schedule"):
        scheduler_arguments("wsdd", 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        scheduler_arguments("wsd", 10, warmup_steps=20)


def test_scalar_and_batch_size_schedules():
    rate = ScalarSchedule.from_config([0.3, 0.15], "mask_rate")
    assert rate(0) == 0.3 and rate(1) == 0.15 and rate(0.5) == pytest.approx(0.225)
    assert rate.to_config() == [0.3, 0.15]
    constant = ScalarSchedule.from_config(0.3, "mask_rate")
    assert constant(0.7) == 0.3 and constant.to_config() == 0.3
    for bad in (1.5, [0.3, -0.1], [0.1, 0.2, 0.3], "0.3", True):
        with pytest.raises(ConfigError, match=r"mask_rate must be a number in \[0, 1\] or \[start, end\]"):
            ScalarSchedule.from_config(bad, "mask_rate")
    cosine = ScalarSchedule(0.0, 1.0, "cosine")
    assert cosine(0.25) == pytest.approx(0.5 * (1 - math.cos(math.pi * 0.25)))
    sizes = BatchSizeSchedule(32, start=8, warmup_steps=4, multiple=8)
    assert [sizes(s) for s in range(6)] == [8, 8, 16, 24, 32, 32]
    assert BatchSizeSchedule(32)(0) == 32


def test_mixture_schedule_pieces():
    schedule = MixtureSchedule(
        [
            MixturePiece({"general": 1.0}, {"general": 1.0}, "constant", until=0.5),
            MixturePiece({"general": 0.8, "ecom": 0.2}, {"general": 0.2, "ecom": 0.8}, "linear", until=1.0),
        ]
    )
    assert schedule.sources == ("general", "ecom")
    np.testing.assert_allclose(schedule.weights(0.25), [1.0, 0.0])
    np.testing.assert_allclose(schedule.weights(0.75), [0.5, 0.5])
    np.testing.assert_allclose(schedule.weights(1.0), [0.2, 0.8])
    cosine = MixtureSchedule.interpolated({"a": 1, "b": 0}, {"a": 0, "b": 1}, "cosine")
    np.testing.assert_allclose(cosine.weights(0.25)[1], 0.5 * (1 - math.cos(math.pi * 0.25)))
    unnormalised = MixtureSchedule.constant({"a": 3, "b": 1})
    np.testing.assert_allclose(unnormalised.weights(0.3), [0.75, 0.25])
    with pytest.raises(ValueError, match="positive sum"):
        MixtureSchedule.constant({"a": 0.0})
    with pytest.raises(ValueError, match="end at progress 1.0"):
        MixtureSchedule([MixturePiece({"a": 1}, {"a": 1}, until=0.5)])
    with pytest.raises(ValueError, match="unknown mixture shape"):
        MixtureSchedule.interpolated({"a": 1}, {"a": 1}, "sigmoid")
