"""What every task's trainer shares: its arguments from `TrainSettings`, and training that resumes."""

from __future__ import annotations

import sys
from typing import Any

import torch
from transformers import TrainingArguments

from .config import TrainSettings

__all__ = ["model_context", "train_resumably", "trainer_arguments"]


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
        disable_tqdm=not sys.stderr.isatty(),
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


def model_context(config) -> int:
    """The longest input a model config takes (its position embeddings)."""
    return int(getattr(config, "max_position_embeddings", 512))
