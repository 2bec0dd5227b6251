"""Model directories and Trainer checkpoints on disk: saved with checksums, linked instead of copied,
checked before they are resumed from.

A kill during a checkpoint write leaves a `checkpoint-N` directory without `trainer_state.json`, with a
0-byte `optimizer.pt` or a truncated `model.safetensors`; resuming from it fails on every retry. A disk that
flips bits leaves one whose files all parse and load, and resuming from it trains on garbage without a word.
So every checkpoint gets a `checksums.json` of all its files, written last, after every process has written
its part (`CheckpointChecksumsCallback`); a checkpoint without one was not finished.

`checkpoint_problem` says what is wrong with one (the Trainer's and the mixture's state and the checksums are
there, every JSON file parses, every safetensors file is as long as its header says, every torch file is a
complete zip archive; with `full`, every file's SHA-256 matches) and `set_aside_incomplete_checkpoints`
renames the bad ones to `incomplete-checkpoint-N` (`damaged-checkpoint-N` when only the checksums fail), so
resuming starts from the newest good one. Hashing runs at about 2 GB/s per core here, so only the newest
checkpoints are hashed, down to the first good one (the one resumed from): about 2.5 s for the 4.8 GB of a
400M model with its AdamW state; older ones get the cheap checks.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

from transformers import TrainerCallback

from modeling_rexbert.tokenization import fit_to_model
from rexbert_core.safe_outputs import (
    CHECKSUMS_FILENAME,
    WRITTEN_FILENAME,
    record,
    record_written,
    remove_written,
    safetensors_problem,
    verify,
)
from rexbert_core.typed_config import DataError

from .divergence import TrainingDiverged, any_process, nonfinite_parameters
from .saliency import LEXICON_FILENAME, SaliencyLexicon
from .stream_checkpoint import MIXTURE_STATE_FILENAME

__all__ = [
    "CheckpointChecksumsCallback",
    "checkpoint_problem",
    "link_model_dir",
    "portable_path",
    "save_model_dir",
    "set_aside_incomplete_checkpoints",
]

logger = logging.getLogger(__name__)
REQUIRED_IN_CHECKPOINT = ("trainer_state.json", MIXTURE_STATE_FILENAME, CHECKSUMS_FILENAME)


def save_model_dir(model, tokenizer, lexicon: SaliencyLexicon | None, directory: Path) -> None:
    """`save_pretrained` model and tokenizer, plus the lexicon, into `directory`, with the weights'
    size and SHA-256 in `checksums.json` (checked wherever the directory is loaded again)."""
    model.save_pretrained(directory)
    fit_to_model(tokenizer, model.config).save_pretrained(directory)
    if lexicon is not None:
        lexicon.save(directory / LEXICON_FILENAME)
    record(directory, sorted(p.name for p in Path(directory).glob("*.safetensors")))


def link_model_dir(source: str | Path, target: str | Path) -> Path:
    """`target` as a copy of the model directory `source`, its weight files hard-linked rather than
    written again (they are never modified in place; a later save replaces the file). Falls back to
    copying where the two directories are on different file systems.

    What an earlier call placed in `target` is replaced (a weight file the new model lacks goes too); any
    other file there, a user's, stays (`safe_outputs.record_written`)."""
    source, target = Path(source), Path(target)
    if target.exists():
        remove_written(target)
    record_written(target, *(path.name for path in source.iterdir() if path.name != WRITTEN_FILENAME))
    for path in sorted(source.rglob("*")):
        if path.name == WRITTEN_FILENAME:
            continue
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(exist_ok=True)
        elif path.suffix == ".safetensors":
            try:
                os.link(path, destination)
            except OSError:
                shutil.copy2(path, destination)
        else:
            shutil.copy2(path, destination)
    return target


def portable_path(path: str, output: Path) -> str:
    """A path as it may be published: relative to the output directory when inside it, the folder's
    name for another local folder, a Hub id as it is (no absolute local path leaves the machine)."""
    candidate = Path(path)
    if not candidate.exists():
        return path
    try:
        return candidate.resolve().relative_to(Path(output).resolve()).as_posix()
    except ValueError:
        return candidate.name


class CheckpointChecksumsCallback(TrainerCallback):
    """Writes `checksums.json` (size and SHA-256 of every file) into each checkpoint, once every process has
    written its files: registered after every callback that adds files to a checkpoint. Weights that are no
    longer finite get no checksums (the checkpoint is never resumed from) and stop the run."""

    def on_save(self, args, state, control, model=None, **kwargs):
        import torch.distributed as dist

        nonfinite = nonfinite_parameters(model) if model is not None else []
        if any_process(bool(nonfinite), device=args.device):  # also the barrier: every process wrote its part
            where = f" ({', '.join(nonfinite)})" if nonfinite else " (on another process)"
            raise TrainingDiverged(state.global_step, f"weights are nan or inf{where}")
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            files = [p for p in checkpoint.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILENAME]
            record(checkpoint, [p.relative_to(checkpoint).as_posix() for p in files])
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # no process goes on (and may be killed) before the checkpoint is finished


def checkpoint_problem(directory: Path, *, full: bool = False) -> str | None:
    """Why `directory` cannot be resumed from, or None (see the module docstring); `full` also checks
    every file's SHA-256 against `checksums.json`."""
    for name in REQUIRED_IN_CHECKPOINT:
        if not (directory / name).is_file():
            return f"no {name}"
    if not list(directory.glob("*.safetensors")):
        return "no model weights"
    for path in sorted(directory.iterdir()):
        problem = None
        if path.suffix == ".json":
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                problem = "not valid JSON"
        elif path.suffix == ".safetensors":
            problem = safetensors_problem(path)
        elif path.suffix in (".pt", ".pth", ".bin"):
            try:
                with zipfile.ZipFile(path) as archive:
                    problem = None if archive.testzip() is None else "a damaged archive member"
            except (zipfile.BadZipFile, OSError):
                problem = "not a complete torch archive"
        if problem:
            return f"{path.name}: {problem}"
    if full:
        try:
            verify(directory)
        except DataError as error:
            return str(error)
    return None


def _step(checkpoint: Path) -> int:
    suffix = checkpoint.name.rpartition("-")[2]
    return int(suffix) if suffix.isdigit() else -1


def set_aside_incomplete_checkpoints(pretrain_dir: Path) -> list[Path]:
    """Rename the checkpoints an interruption left incomplete (`incomplete-checkpoint-N`) or a disk damaged
    (`damaged-checkpoint-N`), newest first and down to the first good one, which resuming starts from.
    Returns the renamed directories."""
    renamed = []
    for folder in sorted(Path(pretrain_dir).glob("phase*/checkpoints")):
        good_found = False
        for checkpoint in sorted(folder.glob("checkpoint-*"), key=_step, reverse=True):
            problem = checkpoint_problem(checkpoint)
            kind = "incomplete"
            if problem is None and not good_found:
                problem, kind = checkpoint_problem(checkpoint, full=True), "damaged"
            if problem is None:
                good_found = True
                continue
            target = checkpoint.with_name(f"{kind}-{checkpoint.name}")
            shutil.rmtree(target, ignore_errors=True)
            checkpoint.rename(target)
            logger.warning("set aside the %s checkpoint %s (%s)", kind, checkpoint, problem)
            renamed.append(target)
    return renamed
