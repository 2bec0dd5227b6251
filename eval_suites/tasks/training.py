"""What every task's trainer shares: its arguments from `TrainSettings`, and training that resumes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import TrainingArguments

from .config import TrainSettings

__all__ = [
    "model_context",
    "progress_wanted",
    "quiet_miner",
    "train_resumably",
    "train_with_trainer",
    "trainer_arguments",
]


def trainer_arguments(
    settings: TrainSettings, output_dir: str, arguments_class: type = TrainingArguments, **extra: Any
) -> TrainingArguments:
    """`arguments_class` (the task trainer's: `SentenceTransformerTrainingArguments`, ...) from `settings`:
    checkpoints every `save_steps` (the last two kept), a linear schedule with warmup, seeded, no reporting
    services; a progress bar on a terminal, a log line every 10 steps otherwise."""
    return arguments_class(
        output_dir=output_dir,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,  # a float below 1: a fraction of the steps
        lr_scheduler_type="linear",
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        eval_strategy="no",
        logging_steps=10,
        disable_tqdm=not progress_wanted(),
        report_to="none",
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=settings.bf16,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        **extra,
    )


def train_resumably(trainer, checkpoint: str | None) -> None:
    """`trainer.train()`, from `checkpoint` when an earlier call of the same fine-tune left one."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the log lines of `logging_steps` stay; not the dict dumps
    trainer.train(resume_from_checkpoint=checkpoint)


def train_with_trainer(
    model, train, collator, settings: TrainSettings, output_dir: str, checkpoint: str | None = None
):
    """Fine-tune `model` in place with transformers' `Trainer` and `collator`; returns the trainer (for
    `predict`). The classification and extraction tasks differ only in their collator."""
    from transformers import Trainer

    trainer = Trainer(
        model=model,
        args=trainer_arguments(settings, output_dir),
        train_dataset=train,
        data_collator=collator,
    )
    train_resumably(trainer, checkpoint)
    return trainer


def model_context(config) -> int:
    """The longest input a model config takes (its position embeddings)."""
    return int(getattr(config, "max_position_embeddings", 512))


def progress_wanted() -> bool:
    """Progress bars only where someone watches them: transformers' bars on (the CLI's -q turns them off)
    and stderr a terminal."""
    from transformers.utils import logging as hf_logging

    return hf_logging.is_progress_bar_enabled() and sys.stderr.isatty()


@contextmanager
def quiet_miner() -> Iterator[None]:
    """sentence-transformers' `mine_hard_negatives` (6.2) encodes with `show_progress_bar=True` and draws its
    scoring bars whatever `verbose` says, which fills a run's log; without `progress_wanted()` its bars are
    switched off here, for the call only."""
    if progress_wanted():
        yield
        return
    from sentence_transformers.sentence_transformer import model as st_model
    from sentence_transformers.util import hard_negatives
    from tqdm.auto import tqdm, trange

    saved = (hard_negatives.trange, hard_negatives.tqdm, st_model.trange)
    hard_negatives.trange = st_model.trange = _switched_off(trange)
    hard_negatives.tqdm = _switched_off(tqdm)
    try:
        yield
    finally:
        hard_negatives.trange, hard_negatives.tqdm, st_model.trange = saved


def _switched_off(bar):
    return lambda *args, **kwargs: bar(*args, **{**kwargs, "disable": True})
