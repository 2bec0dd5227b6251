"""Run the phases of a recipe (the `rexbert pretrain` command is `trainers.cli`), on one process or many.

Output directory layout:

    recipe.yaml                                the recipe as it ran (resolved, all fields)
    tokenizer/, saliency_lexicon.json          shared by all phases
    phase<N>-<name>/checkpoints/checkpoint-*   Trainer checkpoints (+ mixture_state.json)
    phase<N>-<name>/final/                     the phase's model, tokenizer and lexicon
    phase<N>-<name>/train_log.{jsonl,json,csv} its training and validation log; phase_summary.json
    model/                                     the last phase's model, tokenizer and lexicon (its weights
                                               file is a hard link to the last phase's, not a copy)
    train_log.{json,csv}, training_curves.png  all phases together
    training_summary.json                      preset, model config and one entry per phase

`--resume` skips phases that finished (they have `phase_summary.json`) and continues an interrupted phase
from its last complete checkpoint, data stream included (incomplete checkpoints, left by a kill during a
save, are set aside first: `trainers.checkpoints`). The directory is locked while a pretraining runs and
records the recipe it was made with (`.rexbert-owner.json`): a changed recipe is refused, naming the
changed fields, and `--restart` removes exactly what pretraining wrote there.

Under a launcher (torchrun, accelerate launch) every process runs `pretrain`; the main process owns the
directory and writes every shared file, the others wait for it (`trainers.distributed`).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import yaml

from rexbert_core.safe_outputs import (
    DirectoryLock,
    OwnedDirectory,
    atomic_write_json,
    atomic_write_text,
    verify_model_dir,
)
from rexbert_core.typed_config import ConfigError, to_mapping

from .checkpoints import link_model_dir, set_aside_incomplete_checkpoints
from .distributed import barrier, is_main_process, quiet_other_processes
from .elastic import PROCESSES_FILENAME, reference_processes
from .phase import PHASE_SUMMARY_FILENAME, phase_dir, phase_started, run_phase
from .recipes import PhaseSpec, Recipe
from .reporting import plot_training, read_step_log, write_step_tables
from .saliency import LEXICON_FILENAME, SaliencyLexicon
from .sources import RecipeData, load_lexicon, load_tokenizer

__all__ = ["RECIPE_FILENAME", "SUMMARY_FILENAME", "pretrain", "recipe_record", "write_run_outputs"]

logger = logging.getLogger("rexbert.pretrain")

SUMMARY_FILENAME = "training_summary.json"
RECIPE_FILENAME = "recipe.yaml"


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
    quiet_other_processes()
    if not is_main_process():  # the main process owns and prepares the directory
        barrier()
        return _run_phases(recipe, output, selected, resume=resume, max_steps=max_steps)
    config = {"recipe": recipe_record(recipe), "max_steps": max_steps}
    with DirectoryLock(output):
        owned = OwnedDirectory.claim(output, "pretrain", config, restart=restart)
        started = [n for n in selected if phase_started(phase_dir(output, n, recipe.phase_list[n - 1]))]
        if started and not resume:
            barrier()
            raise ConfigError(
                f"{output} already holds phase(s) {started} of this recipe; pass --resume to continue, or "
                "--restart to start over"
            )
        owned.created(*output_entries(recipe))
        atomic_write_text(output / RECIPE_FILENAME, yaml.safe_dump(config["recipe"], sort_keys=False))
        if resume:
            set_aside_incomplete_checkpoints(output)
        barrier()
        return _run_phases(recipe, output, selected, resume=resume, max_steps=max_steps)


def _run_phases(recipe: Recipe, output: Path, selected, *, resume: bool, max_steps: int | None) -> dict:
    data = RecipeData(recipe, outputs=output)
    tokenizer, lexicon = _shared_tokenizer_and_lexicon(recipe, data, output)
    processes = reference_processes(output)  # what the global batch was fixed at (trainers.elastic)
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
        entry = run_phase(
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
            reference_processes=processes,
        )
        previous = str(output / entry["checkpoint"])
    # the summary covers every finished phase in the directory, also those run by earlier calls
    records = [
        r for n, p in enumerate(recipe.phase_list, 1) if (r := _phase_record(output, n, p)) is not None
    ]
    if is_main_process():
        summary = write_run_outputs(recipe, output, records, previous)
    barrier()
    return (
        summary if is_main_process() else json.loads((output / SUMMARY_FILENAME).read_text(encoding="utf-8"))
    )


def recipe_record(recipe: Recipe) -> dict:
    """The recipe as plain data (what the output directory was made with; readable as a recipe again)."""
    return to_mapping(recipe)


def output_entries(recipe: Recipe) -> list[str]:
    """The top-level entries `pretrain` writes into its output directory."""
    phases = [f"phase{n}-{name}" for n, name in enumerate(recipe.phases, 1)]
    tables = ["train_log.json", "train_log.csv", "training_curves.png"]
    return [
        RECIPE_FILENAME, PROCESSES_FILENAME, "tokenizer", LEXICON_FILENAME, *phases, "model", *tables,
        SUMMARY_FILENAME,
    ]  # fmt: skip


def _phase_init(
    recipe: Recipe, number: int, phase: PhaseSpec, output: Path, previous: str | None
) -> str | None:
    """The directory / Hub id the phase starts from (None: fresh weights). A phase that starts from the
    previous one, which has not run here, starts from the recipe's `init_from` when there is one (continued
    pretraining of an existing encoder from any phase)."""
    if phase.init_from == "scratch":
        return None
    if phase.init_from != "previous":
        return phase.init_from
    if previous is not None:
        return previous
    if number == 1:
        return recipe.init_from
    earlier = phase_dir(output, number - 1, recipe.phase_list[number - 2]) / "final"
    if earlier.is_dir():
        return str(earlier)
    if recipe.init_from is not None:
        return recipe.init_from
    raise ConfigError(
        f"phase {number} ({phase.name}) starts from phase {number - 1}'s model, not found at {earlier}; "
        f"run phase {number - 1} first, or give --init-from (recipe init_from)"
    )


def _shared_tokenizer_and_lexicon(recipe: Recipe, data: RecipeData, output: Path):
    """Tokenizer and lexicon of the run: built once by the main process and saved in `output` (the
    directory is owned by this recipe, so what is there was built from it), read by the other processes
    and by later calls. Both are written aside and renamed into place, so a kill leaves them whole or
    absent."""
    from transformers import AutoTokenizer

    tokenizer_dir, lexicon_path = output / "tokenizer", output / LEXICON_FILENAME
    if is_main_process():
        if not tokenizer_dir.is_dir():
            partial = output / "tokenizer.partial"
            shutil.rmtree(partial, ignore_errors=True)
            load_tokenizer(recipe.tokenizer, data).save_pretrained(partial)
            partial.rename(tokenizer_dir)
        if recipe.lexicon is not None and not lexicon_path.is_file():
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
            load_lexicon(recipe.lexicon, data, tokenizer).save(lexicon_path)
    barrier()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    lexicon = SaliencyLexicon.load(lexicon_path, tokenizer) if recipe.lexicon is not None else None
    return tokenizer, lexicon


def _phase_record(output: Path, number: int, phase: PhaseSpec) -> dict | None:
    path = phase_dir(output, number, phase) / PHASE_SUMMARY_FILENAME
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
