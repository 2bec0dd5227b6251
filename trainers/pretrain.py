"""`rexbert pretrain`: run the phases of a recipe with `RexBertTrainer`.

    rexbert pretrain --recipe rexbert-17m --output runs/rexbert-17m
    rexbert pretrain --recipe tiny --phase 2 --resume --output runs/tiny --max-steps 10
    rexbert pretrain --recipe my.yaml --source ecom=data/ecom/*.parquet --set phases.anneal.steps=500

Output directory layout:

    tokenizer/, saliency_lexicon.json          shared by all phases
    phase<N>-<name>/checkpoints/checkpoint-*   Trainer checkpoints (+ mixture_state.json)
    phase<N>-<name>/final/                     the phase's model, tokenizer and lexicon
    phase<N>-<name>/train_log.{jsonl,json,csv} its training log; phase_summary.json
    model/                                     the last phase's model, tokenizer and lexicon
    train_log.{json,csv}, training_curves.png  all phases together
    training_summary.json                      preset, model config and one entry per phase

`--resume` skips phases that finished (they have `phase_summary.json`) and continues an
interrupted phase from its last checkpoint, data stream included.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch
from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from .collator import GuidedMLMCollator
from .mixture import MixtureSchedule, MixtureStream
from .recipes import PhaseSpec, Recipe, RecipeError, did_you_mean, load_recipe
from .reporting import StepLogCallback, plot_training, read_step_log, write_step_tables
from .saliency import LEXICON_FILENAME, SaliencyLexicon
from .schedules import BatchSizeSchedule, ScalarSchedule, lr_lambda
from .sources import RecipeData, load_lexicon, load_tokenizer
from .trainer import RexBertTrainer

logger = logging.getLogger("rexbert.pretrain")

SUMMARY_FILENAME = "training_summary.json"
PHASE_SUMMARY_FILENAME = "phase_summary.json"
ROPE_KEYS = {"global_rope_theta": "full_attention", "local_rope_theta": "sliding_attention"}
SHAPE_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


# ---- model ----------------------------------------------------------------------------------------


def apply_config_changes(config, changes: dict) -> None:
    """Set config fields by name; `global_rope_theta` / `local_rope_theta` update `rope_parameters`."""
    for key, value in changes.items():
        if key in ROPE_KEYS:
            config.rope_parameters[ROPE_KEYS[key]]["rope_theta"] = float(value)
        elif hasattr(config, key):
            setattr(config, key, value)
        else:
            fields = [k for k in config.to_dict() if not k.startswith("_")] + list(ROPE_KEYS)
            raise RecipeError(f"model.{key}: not a RexBertConfig field{did_you_mean(key, fields)}")


def build_model(recipe: Recipe, phase: PhaseSpec, tokenizer, init_from: str | None):
    """A fresh model from the preset (+ recipe `model` fields), or the checkpoint `init_from` with the
    recipe's non-shape fields; then the phase's `model` changes (e.g. RoPE theta for long context)."""
    from modeling_rexbert import RexBertConfig, RexBertForMaskedLM, rexbert_config
    from modeling_rexbert.tokenization import tokenizer_config_kwargs

    if init_from is None:
        fields = {**tokenizer_config_kwargs(tokenizer), **recipe.model}
        config = rexbert_config(recipe.preset, **{k: v for k, v in fields.items() if k not in ROPE_KEYS})
        apply_config_changes(config, {k: v for k, v in fields.items() if k in ROPE_KEYS})
        apply_config_changes(config, phase.model)
        return RexBertForMaskedLM(config)
    config = RexBertConfig.from_pretrained(init_from)
    apply_config_changes(config, {k: v for k, v in recipe.model.items() if k not in SHAPE_KEYS})
    apply_config_changes(config, phase.model)
    if config.vocab_size < len(tokenizer):
        raise RecipeError(
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
        raise RecipeError(
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
    phase_dir = output / f"phase{number}-{phase.name}"
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
        callbacks=[StepLogCallback(phase_dir, number, phase.name)],
    )
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
        "init_from": init_from or "scratch",
        "source_epochs": {name: cursor.epoch + 1 for name, cursor in stream.cursors.items()},
        "packing": {name: source.stats.as_dict() for name, source in stream.sources.items()},
    }
    (phase_dir / PHASE_SUMMARY_FILENAME).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def _final_loss(entries: list[dict]) -> float:
    losses = [e["loss"] for e in entries if "loss" in e]
    return float(losses[-1]) if losses else math.nan


def save_model_dir(model, tokenizer, lexicon: SaliencyLexicon | None, directory: Path) -> None:
    """`save_pretrained` model and tokenizer, plus the lexicon, into `directory`."""
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if lexicon is not None:
        lexicon.save(directory / LEXICON_FILENAME)


# ---- all phases ------------------------------------------------------------------------------------


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
        raise RecipeError(
            f"phase {number} ({phase.name}) starts from phase {number - 1}'s model, "
            f"not found at {earlier}; run phase {number - 1} first or set its init_from"
        )
    return str(earlier)


def _shared_tokenizer_and_lexicon(recipe: Recipe, data: RecipeData, output: Path, resume: bool):
    """Tokenizer and lexicon of the run, saved in (or, when resuming, reloaded from) `output`."""
    from transformers import AutoTokenizer

    tokenizer_dir, lexicon_path = output / "tokenizer", output / LEXICON_FILENAME
    if resume and tokenizer_dir.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        tokenizer = load_tokenizer(recipe.tokenizer, data)
        tokenizer.save_pretrained(tokenizer_dir)
    lexicon = None
    if recipe.lexicon is not None:
        if resume and lexicon_path.is_file():
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
    max_steps: int | None = None,
) -> dict:
    """Run the selected phases (default all, in order) and write the summary; returns it."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    selected = (
        sorted({recipe.select_phase(p)[0] for p in phases}) if phases else range(1, len(recipe.phases) + 1)
    )
    data = RecipeData(recipe)
    tokenizer, lexicon = _shared_tokenizer_and_lexicon(recipe, data, output, resume)
    previous = None
    for number in selected:
        phase = recipe.phase_list[number - 1]
        if resume and _phase_record(output, number, phase) is not None:
            logger.info("phase %d (%s) already finished; skipping", number, phase.name)
            previous = str(output / _phase_record(output, number, phase)["checkpoint"])
            continue
        init_from = _phase_init(recipe, number, phase, output, previous)
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
    return write_run_outputs(recipe, output, records, previous, lexicon)


def _phase_record(output: Path, number: int, phase: PhaseSpec) -> dict | None:
    path = output / f"phase{number}-{phase.name}" / PHASE_SUMMARY_FILENAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_run_outputs(recipe: Recipe, output: Path, records: list[dict], final_model: str, lexicon) -> dict:
    """Copy the last phase's model to `model/`, write the combined log, plot and summary."""
    from transformers import AutoTokenizer

    from modeling_rexbert import RexBertForMaskedLM

    model = RexBertForMaskedLM.from_pretrained(final_model)
    save_model_dir(model, AutoTokenizer.from_pretrained(final_model), lexicon, output / "model")
    entries = [e for r in records for e in read_step_log(output / f"phase{r['phase']}-{r['name']}")]
    write_step_tables(entries, output)
    plot = plot_training(entries, output / "training_curves.png")
    summary = {
        "preset": recipe.preset,
        "recipe": recipe.path,
        "config": model.config.to_dict(),
        "phases": records,
        "model": str(output / "model"),
        "plot": str(plot) if plot else None,
    }
    (output / SUMMARY_FILENAME).write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return summary


# ---- CLI -----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Pretrain RexBERT with a phase recipe (YAML): all phases, or the ones named."
    parser.add_argument(
        "--recipe",
        required=True,
        help="recipe file, or a shipped recipe name: tiny, rexbert-17m, -32m, -68m, -150m, -400m",
    )
    parser.add_argument(
        "--phase",
        action="append",
        metavar="N|NAME",
        help="run only this phase (number or name); repeatable; default: all in order",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip finished phases and continue an interrupted one from its last checkpoint",
    )
    parser.add_argument("--output", default="runs/pretrain", help="output directory (default: runs/pretrain)")
    parser.add_argument("--max-steps", type=int, help="train every selected phase for this many steps")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME=FILES",
        help="read source NAME from these local files (glob or comma-separated list)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="override a recipe field, e.g. phases.anneal.steps=500 (value parsed as YAML)",
    )


def source_overrides(items: list[str]) -> list[str]:
    """`NAME=FILES` -> recipe overrides that make NAME read exactly those files."""
    overrides = []
    for item in items:
        name, sep, files = item.partition("=")
        if not sep or not files:
            raise RecipeError(f"--source {item!r}: expected NAME=FILES")
        paths = files.split(",")
        overrides += [
            f"sources.{name}.data_files={json.dumps(paths if len(paths) > 1 else paths[0])}",
            f"sources.{name}.sample_corpus=null",
            f"sources.{name}.dataset=null",
            f"sources.{name}.where=null",
        ]
    return overrides


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        recipe = load_recipe(args.recipe, source_overrides(args.source) + args.overrides)
    except (RecipeError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    summary = pretrain(recipe, args.output, phases=args.phase, resume=args.resume, max_steps=args.max_steps)
    for record in summary["phases"]:
        logger.info(
            "phase %d %-8s steps %6d tokens %10d final loss %.4f",
            record["phase"],
            record["name"],
            record["steps"],
            record["tokens"],
            record["final_loss"],
        )
    logger.info("model: %s; summary: %s", summary["model"], Path(args.output) / SUMMARY_FILENAME)
    return 0
