"""Run the phases of a recipe with `RexBertTrainer` (the `rexbert pretrain` command is `trainers.cli`).

Output directory layout:

    recipe.yaml                                the recipe as it ran (resolved, all fields)
    tokenizer/, saliency_lexicon.json          shared by all phases
    phase<N>-<name>/checkpoints/checkpoint-*   Trainer checkpoints (+ mixture_state.json)
    phase<N>-<name>/final/                     the phase's model, tokenizer and lexicon
    phase<N>-<name>/train_log.{jsonl,json,csv} its training log; phase_summary.json
    model/                                     the last phase's model, tokenizer and lexicon (its weights
                                               file is a hard link to the last phase's, not a copy)
    train_log.{json,csv}, training_curves.png  all phases together
    training_summary.json                      preset, model config and one entry per phase

`--resume` skips phases that finished (they have `phase_summary.json`) and continues an
interrupted phase from its last complete checkpoint, data stream included (incomplete checkpoints, left by
a kill during a save, are set aside first: `trainers.checkpoints`). The directory is locked while a
pretraining runs and records the recipe it was made with (`.rexbert-owner.json`): a changed recipe is
refused, naming the changed fields, and `--restart` removes exactly what pretraining wrote there.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import torch
import yaml
from transformers import PrinterCallback, ProgressCallback, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from safe_outputs import DirectoryLock, OwnedDirectory, atomic_write_json, atomic_write_text, verify_model_dir
from typed_config import ConfigError, to_mapping

from .checkpoints import link_model_dir, save_model_dir, set_aside_incomplete_checkpoints
from .collator import GuidedMLMCollator
from .mixture import MixtureSchedule, MixtureStream
from .recipes import ROPE_KEYS, PhaseSpec, Recipe
from .reporting import (
    ConsoleProgressCallback,
    StepLogCallback,
    plot_training,
    read_step_log,
    write_step_tables,
)
from .saliency import LEXICON_FILENAME, SaliencyLexicon
from .schedules import BatchSizeSchedule, ScalarSchedule, lr_lambda
from .sources import RecipeData, load_lexicon, load_tokenizer
from .trainer import RexBertTrainer

__all__ = [
    "PHASE_SUMMARY_FILENAME",
    "SHAPE_KEYS",
    "SUMMARY_FILENAME",
    "apply_config_changes",
    "build_model",
    "build_stream",
    "link_model_dir",
    "optimizer_cls_and_kwargs",
    "pretrain",
    "run_phase",
    "save_model_dir",
    "set_aside_incomplete_checkpoints",
    "training_arguments",
    "write_run_outputs",
]

logger = logging.getLogger("rexbert.pretrain")

SUMMARY_FILENAME = "training_summary.json"
RECIPE_FILENAME = "recipe.yaml"
PHASE_SUMMARY_FILENAME = "phase_summary.json"
SHAPE_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


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
    """A fresh model from the preset (+ recipe `model` fields), or the checkpoint `init_from` with the
    recipe's non-shape fields; then the phase's `model` changes (e.g. RoPE theta for long context)."""
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


# ---- one phase -----------------------------------------------------------------------------------


def build_stream(
    recipe: Recipe, number: int, phase: PhaseSpec, tokenizer, lexicon, data: RecipeData, steps: int
) -> MixtureStream:
    """The phase's mixture of packed sources, collated by a `GuidedMLMCollator`."""
    mixture = phase.mixture
    schedule = (
        MixtureSchedule.interpolated(mixture.start, mixture.end, mixture.shape)
        if mixture.end
        else MixtureSchedule.constant(mixture.start)
    )
    mask_rate = ScalarSchedule.parse(phase.mask_rate)
    guidance = ScalarSchedule.parse(phase.guided_mlm.weight)
    collator = GuidedMLMCollator(
        tokenizer,
        mask_rate=mask_rate.start,
        lexicon=lexicon,
        guidance=guidance.start,
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
        grad_accum=phase.grad_accum,
        seed=recipe.seed * 1000 + number,
        mask_rate=mask_rate,
        guidance=guidance,
        on_exhausted=phase.on_exhausted,
    )


def optimizer_cls_and_kwargs(phase: PhaseSpec):
    """(class, kwargs) for StableAdamW from `torch-optimi`; None for the Trainer's AdamW."""
    if phase.optimizer.name == "adamw":
        return None
    try:
        from optimi import StableAdamW
    except ImportError as error:
        raise ConfigError(
            f"phases.{phase.name}.optimizer.name=stableadamw needs the torch-optimi package "
            "(pip install torch-optimi), or use adamw"
        ) from error
    spec = phase.optimizer
    return StableAdamW, {
        "lr": phase.lr.peak,
        "betas": tuple(spec.betas),
        "eps": spec.eps,
        "weight_decay": spec.weight_decay,
    }


def training_arguments(recipe: Recipe, phase: PhaseSpec, phase_dir: Path, steps: int) -> TrainingArguments:
    spec = phase.optimizer
    return TrainingArguments(
        output_dir=str(phase_dir / "checkpoints"),
        max_steps=steps,
        per_device_train_batch_size=phase.batch_size,
        gradient_accumulation_steps=phase.grad_accum,
        learning_rate=phase.lr.peak,
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
        seed=recipe.seed,
        ignore_data_skip=True,
        include_num_input_tokens_seen="non_padding",
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        report_to=[],
        dataloader_num_workers=0,
    )


def run_phase(
    recipe: Recipe,
    number: int,
    phase: PhaseSpec,
    output: Path,
    *,
    tokenizer,
    lexicon,
    data,
    init_from: str | None,
    resume: bool,
    steps: int,
) -> dict:
    """Train one phase; save its final model; return its `training_summary.json` entry."""
    phase_dir = _phase_dir(output, number, phase)
    phase_dir.mkdir(parents=True, exist_ok=True)
    set_seed(recipe.seed + number)
    model = build_model(recipe, phase, tokenizer, init_from)
    stream = build_stream(recipe, number, phase, tokenizer, lexicon, data, steps)
    lr = phase.lr
    trainer = RexBertTrainer(
        model=model,
        args=training_arguments(recipe, phase, phase_dir, steps),
        train_stream=stream,
        lr_lambda=lr_lambda(
            lr.schedule,
            steps,
            warmup_steps=min(lr.warmup_steps, steps),
            decay_fraction=lr.decay_fraction,
            decay_shape=lr.decay_shape,
            min_lr_ratio=lr.min_ratio,
        ),
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs(phase),
        processing_class=tokenizer,
        callbacks=[
            StepLogCallback(phase_dir, number, phase.name),
            ConsoleProgressCallback(number, phase.name),
        ],
    )
    for printed in (PrinterCallback, ProgressCallback):  # ConsoleProgressCallback reports instead
        trainer.remove_callback(printed)
    checkpoints = phase_dir / "checkpoints"
    checkpoint = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
    if checkpoint:
        logger.info("phase %d (%s): resuming from %s", number, phase.name, checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    final_dir = phase_dir / "final"
    save_model_dir(trainer.model, tokenizer, lexicon, final_dir)
    entries = read_step_log(phase_dir)
    write_step_tables(entries, phase_dir)
    record = {
        "phase": number,
        "name": phase.name,
        "steps": trainer.state.global_step,
        "tokens": int(trainer.state.num_input_tokens_seen),
        "seq_len": phase.seq_len,
        "mask_rate": ScalarSchedule.parse(phase.mask_rate).describe(),
        "lr_schedule": lr.schedule,
        "peak_lr": lr.peak,
        "mixture": {"start": stream.schedule.as_dict(0.0), "end": stream.schedule.as_dict(1.0)},
        "guided_mlm": ScalarSchedule.parse(phase.guided_mlm.weight).describe() or False,
        "final_loss": _final_loss(entries),
        "checkpoint": str(final_dir.relative_to(output)),  # relative to the run's output directory
        "init_from": portable_path(init_from, output) if init_from else "scratch",
        "source_epochs": {name: cursor.epoch + 1 for name, cursor in stream.cursors.items()},
        "packing": {name: source.stats.as_dict() for name, source in stream.sources.items()},
    }
    atomic_write_json(phase_dir / PHASE_SUMMARY_FILENAME, record)  # last: it marks the phase finished
    return record


def _final_loss(entries: list[dict]) -> float:
    losses = [e["loss"] for e in entries if "loss" in e]
    return float(losses[-1]) if losses else math.nan


def _phase_init(
    recipe: Recipe, number: int, phase: PhaseSpec, output: Path, previous: str | None
) -> str | None:
    """The directory / Hub id the phase starts from (None: fresh weights)."""
    if phase.init_from == "scratch":
        return None
    if phase.init_from != "previous":
        return phase.init_from
    if number == 1:
        return recipe.init_from
    if previous is not None:
        return previous
    earlier_name = list(recipe.phases)[number - 2]
    earlier = output / f"phase{number - 1}-{earlier_name}" / "final"
    if not earlier.is_dir():
        raise ConfigError(
            f"phase {number} ({phase.name}) starts from phase {number - 1}'s model, "
            f"not found at {earlier}; run phase {number - 1} first or set its init_from"
        )
    return str(earlier)


def _shared_tokenizer_and_lexicon(recipe: Recipe, data: RecipeData, output: Path):
    """Tokenizer and lexicon of the run: built once and saved in `output` (the directory is owned by this
    recipe, so what is there was built from it), reloaded by later calls. Both are written aside and
    renamed into place, so a kill leaves them whole or absent."""
    from transformers import AutoTokenizer

    tokenizer_dir, lexicon_path = output / "tokenizer", output / LEXICON_FILENAME
    if tokenizer_dir.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        tokenizer = load_tokenizer(recipe.tokenizer, data)
        partial = output / "tokenizer.partial"
        shutil.rmtree(partial, ignore_errors=True)
        tokenizer.save_pretrained(partial)
        partial.rename(tokenizer_dir)
    lexicon = None
    if recipe.lexicon is not None:
        if lexicon_path.is_file():
            lexicon = SaliencyLexicon.load(lexicon_path, tokenizer)
        else:
            lexicon = load_lexicon(recipe.lexicon, data, tokenizer)
            lexicon.save(lexicon_path)
    return tokenizer, lexicon


def pretrain(
    recipe: Recipe,
    output_dir: str | Path,
    *,
    phases: list[str] | None = None,
    resume: bool = False,
    restart: bool = False,
    max_steps: int | None = None,
) -> dict:
    """Run the selected phases (default all, in order) and write the summary; returns it.

    The output directory is locked while this runs and owned by it (`safe_outputs`): a directory holding
    anything else is refused; one holding an earlier pretraining is continued with `resume` (refused if its
    recipe or `max_steps` changed, naming the fields) or emptied of it first with `restart`."""
    output = Path(output_dir)
    selected = (
        sorted({recipe.select_phase(p)[0] for p in phases}) if phases else range(1, len(recipe.phases) + 1)
    )
    config = {"recipe": recipe_record(recipe), "max_steps": max_steps}
    with DirectoryLock(output):
        owned = OwnedDirectory.claim(output, "pretrain", config, restart=restart)
        started = [n for n in selected if _phase_dir(output, n, recipe.phase_list[n - 1]).exists()]
        if started and not resume:
            raise ConfigError(
                f"{output} already holds phase(s) {started} of this recipe; pass --resume to continue, or "
                "--restart to start over"
            )
        owned.created(*output_entries(recipe))
        atomic_write_text(output / RECIPE_FILENAME, yaml.safe_dump(config["recipe"], sort_keys=False))
        if resume:
            set_aside_incomplete_checkpoints(output)
        return _run_phases(recipe, output, selected, resume=resume, max_steps=max_steps)


def _run_phases(recipe: Recipe, output: Path, selected, *, resume: bool, max_steps: int | None) -> dict:
    data = RecipeData(recipe)
    tokenizer, lexicon = _shared_tokenizer_and_lexicon(recipe, data, output)
    previous = None
    for number in selected:
        phase = recipe.phase_list[number - 1]
        if resume and _phase_record(output, number, phase) is not None:
            logger.info("phase %d (%s) already finished; skipping", number, phase.name)
            previous = str(output / _phase_record(output, number, phase)["checkpoint"])
            continue
        init_from = _phase_init(recipe, number, phase, output, previous)
        if init_from is not None and Path(init_from).is_dir():
            verify_model_dir(init_from)  # a damaged weights file is refused by name
        logger.info(
            "phase %d (%s): %d steps at %d tokens, from %s",
            number,
            phase.name,
            max_steps or phase.steps,
            phase.seq_len,
            init_from or "fresh weights",
        )
        record = run_phase(
            recipe,
            number,
            phase,
            output,
            tokenizer=tokenizer,
            lexicon=lexicon,
            data=data,
            init_from=init_from,
            resume=resume,
            steps=max_steps or phase.steps,
        )
        previous = str(output / record["checkpoint"])
    # the summary covers every finished phase in the directory, also those run by earlier calls
    records = [
        r for n, p in enumerate(recipe.phase_list, 1) if (r := _phase_record(output, n, p)) is not None
    ]
    return write_run_outputs(recipe, output, records, previous)


def recipe_record(recipe: Recipe) -> dict:
    """The recipe as plain data (what the output directory was made with), without where it was read from."""
    return {k: v for k, v in to_mapping(recipe).items() if k != "path"}


def output_entries(recipe: Recipe) -> list[str]:
    """The top-level entries `pretrain` writes into its output directory."""
    phases = [f"phase{n}-{name}" for n, name in enumerate(recipe.phases, 1)]
    tables = ["train_log.json", "train_log.csv", "training_curves.png"]
    return [RECIPE_FILENAME, "tokenizer", LEXICON_FILENAME, *phases, "model", *tables, SUMMARY_FILENAME]


def portable_path(path: str, output: Path) -> str:
    """A path as it may be published: relative to the output directory when inside it, the folder's
    name for another local folder, a Hub id as it is (no absolute local path leaves the machine)."""
    candidate = Path(path)
    if not candidate.exists():
        return path
    try:
        return candidate.resolve().relative_to(output.resolve()).as_posix()
    except ValueError:
        return candidate.name


def _phase_dir(output: Path, number: int, phase: PhaseSpec) -> Path:
    return output / f"phase{number}-{phase.name}"


def _phase_record(output: Path, number: int, phase: PhaseSpec) -> dict | None:
    path = _phase_dir(output, number, phase) / PHASE_SUMMARY_FILENAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_run_outputs(recipe: Recipe, output: Path, records: list[dict], final_model: str) -> dict:
    """`model/` (the last phase's model, linked), the combined log, plot and summary. Paths in the summary
    are relative to `output` (it is published with the model)."""
    model_dir = link_model_dir(final_model, output / "model")
    entries = [e for r in records for e in read_step_log(output / f"phase{r['phase']}-{r['name']}")]
    write_step_tables(entries, output)
    plot = plot_training(entries, output / "training_curves.png")
    summary = {
        "preset": recipe.preset,
        "recipe": RECIPE_FILENAME,
        "config": json.loads((model_dir / "config.json").read_text(encoding="utf-8")),
        "phases": records,
        "model": model_dir.name,
        "plot": plot.name if plot else None,
    }
    atomic_write_json(output / SUMMARY_FILENAME, summary)
    return summary
