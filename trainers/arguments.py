"""The `TrainingArguments` of a phase: what the recipe decides, plus its `training_args` sections.

A recipe may carry `training_args:` at the top (every phase) and in a phase (that phase, merged over the
top): any `transformers.TrainingArguments` field the recipe does not already set through its own fields,
e.g. `report_to: [tensorboard]`, `bf16`, `torch_compile`, `gradient_checkpointing`, `fsdp` /
`fsdp_config`, `deepspeed`, `ddp_find_unused_parameters`, `dataloader_num_workers`. Names are checked
against `TrainingArguments` when the recipe loads (an unknown one is refused with the closest field, a field
the recipe owns is refused naming the recipe field to use), and so are the value types.

What the recipe decides: steps, batch size, gradient accumulation, the learning-rate schedule (transformers'
warmup-stable-decay scheduler, `trainers.schedules`), the optimizer (`adamw_torch`, or `stable_adamw` from
torch-optimi), logging and checkpoint intervals, validation, the seed. Defaults that differ from
transformers': bf16 where the GPU supports it, no reporting integrations, `ddp_find_unused_parameters=False`
(every parameter of the masked-LM receives a gradient), and `use_cpu` on machines without an accelerator,
which is what makes transformers set up gloo for several CPU processes.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from rexbert_core.typed_config import ConfigError, check_value, did_you_mean

from .distributed import accelerator_available
from .schedules import scheduler_arguments

__all__ = ["RECIPE_OWNED", "check_training_args", "training_arguments"]

# TrainingArguments fields a recipe sets through its own fields: where to set them instead.
RECIPE_OWNED = {
    "output_dir": "the --output directory",
    "max_steps": "phases.<name>.steps",
    "num_train_epochs": "phases.<name>.steps",
    "per_device_train_batch_size": "phases.<name>.batch_size",
    "gradient_accumulation_steps": "phases.<name>.grad_accum",
    "learning_rate": "phases.<name>.lr.peak",
    "lr_scheduler_type": "phases.<name>.lr.schedule",
    "lr_scheduler_kwargs": "phases.<name>.lr",
    "warmup_steps": "phases.<name>.lr.warmup_steps",
    "warmup_ratio": "phases.<name>.lr.warmup_steps",
    "weight_decay": "phases.<name>.optimizer.weight_decay",
    "adam_beta1": "phases.<name>.optimizer.betas",
    "adam_beta2": "phases.<name>.optimizer.betas",
    "adam_epsilon": "phases.<name>.optimizer.eps",
    "max_grad_norm": "phases.<name>.optimizer.max_grad_norm",
    "optim": "phases.<name>.optimizer.name",
    "logging_steps": "phases.<name>.logging_steps",
    "save_steps": "phases.<name>.save_steps",
    "save_strategy": "phases.<name>.save_steps",
    "eval_steps": "phases.<name>.eval_steps",
    "eval_strategy": "phases.<name>.eval_steps",
    "seed": "seed",
    "ignore_data_skip": "nothing (the mixture stream resumes itself)",
    "include_num_input_tokens_seen": "nothing (tokens seen are always counted)",
}
OPTIMIZERS = {"adamw": "adamw_torch", "stableadamw": "stable_adamw"}


def check_training_args(where: str, mapping: dict[str, Any]) -> None:
    """Refuse unknown, recipe-owned or mistyped `TrainingArguments` fields (see the module docstring)."""
    fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    hints = typing.get_type_hints(TrainingArguments)
    for key, value in mapping.items():
        if key in RECIPE_OWNED:
            raise ConfigError(f"{where}.{key}: set by the recipe; use {RECIPE_OWNED[key]}")
        if key not in fields:
            raise ConfigError(
                f"{where}.{key}: not a TrainingArguments field{did_you_mean(key, sorted(fields))}"
            )
        if hints.get(key) is not None:
            check_value(hints[key], value, f"{where}.{key}")


def training_arguments(
    recipe,
    phase,
    phase_dir: Path,
    steps: int,
    *,
    eval_steps: int | None = None,
    grad_accum: int | None = None,
) -> TrainingArguments:
    """The phase's `TrainingArguments` (see the module docstring); `grad_accum`: the batches per process
    and step when they differ from the recipe's (`trainers.elastic`)."""
    spec, lr = phase.optimizer, phase.lr
    if spec.name == "stableadamw":
        try:
            import optimi  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"phases.{phase.name}.optimizer.name=stableadamw needs the torch-optimi package "
                "(pip install torch-optimi, or the `train` extra), or use adamw"
            ) from None
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    decided = dict(
        output_dir=str(phase_dir / "checkpoints"),
        max_steps=steps,
        per_device_train_batch_size=phase.batch_size,
        gradient_accumulation_steps=grad_accum or phase.grad_accum,
        learning_rate=lr.peak,
        **scheduler_arguments(
            lr.schedule,
            steps,
            warmup_steps=min(lr.warmup_steps, steps),
            decay_fraction=lr.decay_fraction,
            decay_shape=lr.decay_shape,
            min_lr_ratio=lr.min_ratio,
        ),
        optim=OPTIMIZERS[spec.name],
        weight_decay=spec.weight_decay,
        adam_beta1=spec.betas[0],
        adam_beta2=spec.betas[1],
        adam_epsilon=spec.eps,
        max_grad_norm=spec.max_grad_norm,
        logging_steps=phase.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if phase.save_steps else "no",
        save_steps=phase.save_steps or 500,
        save_total_limit=3,
        eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps,
        seed=recipe.seed,
        ignore_data_skip=True,
        include_num_input_tokens_seen="non_padding",
    )
    defaults = dict(
        bf16=bf16,
        report_to=[],
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        use_cpu=not accelerator_available(),
    )
    return TrainingArguments(**{**defaults, **recipe.training_args, **phase.training_args, **decided})
