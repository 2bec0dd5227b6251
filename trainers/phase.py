"""One pretraining phase: its model, its data stream, its Trainer, and what it leaves on disk.

`run_phase` is called by every training process (`trainers.pretrain`); only the main process writes the
phase's final model (through `Trainer.save_model`, which gathers FSDP / ZeRO-3 shards), its tables and
`phase_summary.json`, the file that marks the phase finished.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from transformers import PrinterCallback, ProgressCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint

from modeling_rexbert.tokenization import fit_to_model
from rexbert_core.safe_outputs import atomic_write_json, record, record_written
from rexbert_core.typed_config import ConfigError, RunError

from .arguments import training_arguments
from .checkpoints import portable_path
from .collator import GuidedMLMCollator
from .distributed import barrier, is_main_process, world_size
from .divergence import TrainingDiverged, any_process, nonfinite_parameters
from .elastic import elastic_grad_accum
from .mixture import MixtureSchedule, MixtureStream
from .recipes import ROPE_KEYS, PhaseSpec, Recipe
from .reporting import LOG_JSONL, ConsoleProgressCallback, StepLogCallback, read_step_log, write_step_tables
from .saliency import LEXICON_FILENAME
from .schedules import BatchSizeSchedule
from .sources import RecipeData
from .trainer import RexBertTrainer
from .validation import validation_batches

__all__ = [
    "PHASE_SUMMARY_FILENAME",
    "SHAPE_KEYS",
    "apply_config_changes",
    "build_model",
    "build_stream",
    "phase_dir",
    "run_phase",
]

logger = logging.getLogger("rexbert.pretrain")

PHASE_SUMMARY_FILENAME = "phase_summary.json"
SHAPE_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


# What a phase writes into its folder; anything else there is a user's and is never deleted.
PHASE_ENTRIES = (
    "checkpoints",
    "final",
    LOG_JSONL,
    "train_log.json",
    "train_log.csv",
    PHASE_SUMMARY_FILENAME,
)


def phase_dir(output: Path, number: int, phase: PhaseSpec) -> Path:
    return output / f"phase{number}-{phase.name}"


def phase_started(directory: Path) -> bool:
    """Whether a phase wrote anything into `directory` (a user's own file there does not count)."""
    return any((directory / name).exists() for name in PHASE_ENTRIES)


# ---- model ----------------------------------------------------------------------------------------


def apply_config_changes(config, changes: dict) -> None:
    """Set config fields by name (the recipe checked the names when it was loaded): `global_rope_theta` /
    `local_rope_theta` update `rope_parameters`, `attn_implementation` picks the attention backend and
    `global_attn_every_n_layers` rebuilds `layer_types`."""
    for key, value in changes.items():
        if key in ROPE_KEYS:
            config.rope_parameters[ROPE_KEYS[key]]["rope_theta"] = float(value)
        elif key == "attn_implementation":
            config._attn_implementation = value
        elif key == "global_attn_every_n_layers":
            config.layer_types = [
                "full_attention" if i % int(value) == 0 else "sliding_attention"
                for i in range(config.num_hidden_layers)
            ]
        else:
            setattr(config, key, value)


def build_model(recipe: Recipe, phase: PhaseSpec, tokenizer, init_from: str | None):
    """A fresh model from the preset (+ recipe `model` fields), or the checkpoint `init_from` (a RexBERT or
    ModernBERT directory or Hub id) with its own shape and the recipe's non-shape fields; then the phase's
    `model` changes (e.g. RoPE theta for long context)."""
    from modeling_rexbert import RexBertConfig, RexBertForMaskedLM, rexbert_config
    from modeling_rexbert.tokenization import tokenizer_config_kwargs

    if init_from is None:
        fields = {**tokenizer_config_kwargs(tokenizer), **recipe.model}
        deferred = (*ROPE_KEYS, "attn_implementation")
        config = rexbert_config(recipe.preset, **{k: v for k, v in fields.items() if k not in deferred})
        apply_config_changes(config, {k: v for k, v in fields.items() if k in deferred})
        apply_config_changes(config, phase.model)
        return RexBertForMaskedLM(config)
    config = RexBertConfig.from_pretrained(init_from)
    apply_config_changes(config, {k: v for k, v in recipe.model.items() if k not in SHAPE_KEYS})
    apply_config_changes(config, phase.model)
    if config.vocab_size < len(tokenizer):
        raise ConfigError(
            f"{init_from} has {config.vocab_size} token embeddings, the tokenizer {len(tokenizer)}"
        )
    return RexBertForMaskedLM.from_pretrained(init_from, config=config)


# ---- data -------------------------------------------------------------------------------------------


def build_stream(
    recipe: Recipe,
    number: int,
    phase: PhaseSpec,
    tokenizer,
    lexicon,
    data: RecipeData,
    steps: int,
    grad_accum: int | None = None,
) -> MixtureStream:
    """The phase's mixture of packed sources, collated by a `GuidedMLMCollator`."""
    mixture = phase.mixture
    schedule = (
        MixtureSchedule.interpolated(mixture.start, mixture.end, mixture.shape)
        if mixture.end
        else MixtureSchedule.constant(mixture.start)
    )
    collator = GuidedMLMCollator(
        tokenizer,
        lexicon=lexicon,
        temperature=phase.guided_mlm.temperature,
        whole_word=phase.guided_mlm.whole_word,
    )
    warmup = phase.batch_size_warmup
    batch_size = BatchSizeSchedule(
        phase.batch_size, warmup.start if warmup else None, warmup.steps if warmup else 0
    )
    sources = {name: data.packed(name, tokenizer, phase.seq_len) for name in schedule.sources}
    return MixtureStream(
        sources,
        schedule,
        collator,
        batch_size=batch_size,
        max_steps=steps,
        grad_accum=grad_accum or phase.grad_accum,
        seed=recipe.seed * 1000 + number,
        mask_rate=phase.mask_rate,
        guidance=phase.guided_mlm.weight,
        on_exhausted=phase.on_exhausted,
    )


def phase_validation(
    recipe: Recipe, number: int, phase: PhaseSpec, tokenizer, data: RecipeData, names: list[str]
):
    """The phase's validation batches (None without validation or `eval_steps`)."""
    if recipe.validation is None or not phase.eval_steps:
        return None
    packed = {name: data.validation_packed(name, tokenizer, phase.seq_len) for name in names}
    return validation_batches(
        packed,
        names,
        tokenizer,
        mask_rate=phase.mask_rate.start,
        batch_size=recipe.validation.batch_size,
        seed=recipe.seed * 1000 + number,
    )


# ---- one phase ---------------------------------------------------------------------------------------


def run_phase(
    recipe: Recipe,
    number: int,
    phase: PhaseSpec,
    output: Path,
    *,
    tokenizer,
    lexicon,
    data: RecipeData,
    init_from: str | None,
    resume: bool,
    steps: int,
    reference_processes: int | None = None,
) -> dict:
    """Train one phase (every process); the main process saves its final model and writes its record.
    Returns the phase's `training_summary.json` entry. `reference_processes`: the process count the global
    batch was fixed at (`trainers.elastic`; default: this run's)."""
    directory = phase_dir(output, number, phase)
    if is_main_process():
        record_written(directory, *PHASE_ENTRIES)
    barrier()
    set_seed(recipe.seed + number)
    grad_accum = elastic_grad_accum(
        phase.name, phase.grad_accum, reference_processes or world_size(), world_size()
    )
    if grad_accum != phase.grad_accum:
        logger.info(
            "phase %d (%s): %d process(es) accumulate %d batches per step (the recipe's %d at %d process(es))",
            number, phase.name, world_size(), grad_accum, phase.grad_accum, reference_processes,
        )  # fmt: skip
    model = build_model(recipe, phase, tokenizer, init_from)
    stream = build_stream(recipe, number, phase, tokenizer, lexicon, data, steps, grad_accum)
    eval_steps = min(phase.eval_steps, steps) if phase.eval_steps else None
    trainer = RexBertTrainer(
        model=model,
        args=training_arguments(
            recipe, phase, directory, steps, eval_steps=eval_steps, grad_accum=grad_accum
        ),
        train_stream=stream,
        validation_batches=phase_validation(recipe, number, phase, tokenizer, data, stream.source_names),
        processing_class=tokenizer,
        callbacks=[
            StepLogCallback(directory, number, phase.name),
            ConsoleProgressCallback(number, phase.name),
        ],
    )
    for printed in (PrinterCallback, ProgressCallback):  # ConsoleProgressCallback reports instead
        trainer.remove_callback(printed)
    checkpoints = directory / "checkpoints"
    checkpoint = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    if checkpoint:
        logger.info("phase %d (%s): resuming from %s", number, phase.name, checkpoint)
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
        nonfinite = nonfinite_parameters(trainer.model)
        if any_process(bool(nonfinite), device=trainer.args.device):  # no nan model is ever saved
            raise TrainingDiverged(
                trainer.state.global_step,
                f"weights are nan or inf ({', '.join(nonfinite) or 'on another process'})",
            )
    except TrainingDiverged as diverged:
        raise RunError(_diverged_message(number, phase, output, checkpoints, diverged)) from None
    final_dir = directory / "final"
    trainer.save_model(str(final_dir))  # every process: gathers sharded weights; the main one writes
    if is_main_process():
        fit_to_model(tokenizer, trainer.model.config).save_pretrained(final_dir)
        if lexicon is not None:
            lexicon.save(final_dir / LEXICON_FILENAME)
        record(final_dir, sorted(p.name for p in final_dir.glob("*.safetensors")))
    entry = _phase_entry(recipe, number, phase, output, trainer, stream, init_from)
    if is_main_process():
        write_step_tables(read_step_log(directory), directory)
        atomic_write_json(directory / PHASE_SUMMARY_FILENAME, entry)  # last: it marks the phase finished
    barrier()  # the next phase starts from this one's final model
    return entry


def _diverged_message(number: int, phase: PhaseSpec, output: Path, checkpoints: Path, diverged) -> str:
    """What to tell the user: where it stopped, what survives, and what changes the outcome (the run is
    deterministic, so resuming with the same recipe diverges again at the same step)."""
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    kept = (
        f"the last good checkpoint is {Path(last).relative_to(output)}"
        if last
        else "no checkpoint of this phase was saved"
    )
    return (
        f"phase {number} ({phase.name}) {diverged}; nothing after it was saved and {kept}. Resuming repeats "
        f"the same steps: lower phases.{phase.name}.lr.peak or lengthen its warmup and run again with "
        "--restart, or start a run from a good model with --init-from"
    )


def _phase_entry(recipe, number: int, phase: PhaseSpec, output: Path, trainer, stream, init_from) -> dict:
    entries = read_step_log(phase_dir(output, number, phase))
    return {
        "phase": number,
        "name": phase.name,
        "steps": trainer.state.global_step,
        "tokens": int(trainer.state.num_input_tokens_seen),
        "seq_len": phase.seq_len,
        "mask_rate": phase.mask_rate.to_config(),
        "lr_schedule": phase.lr.schedule,
        "peak_lr": phase.lr.peak,
        "mixture": {"start": stream.schedule.as_dict(0.0), "end": stream.schedule.as_dict(1.0)},
        "guided_mlm": phase.guided_mlm.weight.to_config() or False,
        "final_loss": _last(entries, "loss"),
        "final_eval_loss": _last(entries, "eval/loss"),
        "checkpoint": str((phase_dir(output, number, phase) / "final").relative_to(output)),
        "init_from": portable_path(init_from, output) if init_from else "scratch",
        "source_epochs": {name: cursor.epoch + 1 for name, cursor in stream.cursors.items()},
        "packing": {name: source.stats.as_dict() for name, source in stream.sources.items()},
    }


def _last(entries: list[dict], key: str) -> float:
    values = [e[key] for e in entries if key in e]
    return float(values[-1]) if values else math.nan
