"""The output folder of one `rexbert finetune`, owned and resumable, and the model it ships.

    O/checkpoints/   the trainer's checkpoints (a rerun with the same config resumes from the last)
    O/model/         the fine-tuned model, as a plain ModernBERT checkpoint (a RexBERT encoder is converted,
                     weights unchanged), with `finetune.json`: what a model card needs (task, data, metrics,
                     baselines)
    O/results.json   every method's metrics on the held-out split, with what made them; `.md`, `.png` beside

The folder is locked while the command runs and records the config it was made with
(`safe_outputs.OwnedDirectory`): the same config continues where it stopped, a changed one is refused in one
line naming the changed fields, `--restart` deletes only what an earlier fine-tune wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory, atomic_write_json, atomic_write_text

__all__ = ["FINETUNE_RECORD", "OUTPUT_ENTRIES", "TaskOutput", "ship_model"]

FINETUNE_RECORD = "finetune.json"
OUTPUT_ENTRIES = ("checkpoints", "model", "model.partial", "results.json", "results.md", "results.png")


def ship_model(saved: Path, target: Path) -> Path:
    """`saved` (a folder a trainer saved) as a plain ModernBERT checkpoint at `target`, replaced atomically:
    loadable by transformers and sentence-transformers without this package, in the form every supported
    client version reads (`modeling_rexbert.client_files`)."""
    config = json.loads((saved / "config.json").read_text(encoding="utf-8"))
    staging = target.with_name(target.name + ".shipping")
    shutil.rmtree(staging, ignore_errors=True)
    if config.get("model_type") == "rexbert":
        from modeling_rexbert.convert import rexbert_to_modernbert

        rexbert_to_modernbert(saved, staging)
    else:
        from modeling_rexbert.client_files import write_client_files

        shutil.copytree(saved, staging)
        write_client_files(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


class TaskOutput:
    """`with TaskOutput(root, task, record, restart=...) as output:` (see the module docstring)."""

    def __init__(self, root: str | Path, task: str, record: dict, *, restart: bool = False):
        self.root, self.task, self.record, self.restart = Path(root), task, record, restart
        self._lock = DirectoryLock(self.root)

    def __enter__(self) -> TaskOutput:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            owned = OwnedDirectory.claim(
                self.root, f"finetune {self.task}", self.record, restart=self.restart
            )
            owned.created(*OUTPUT_ENTRIES)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._lock.__exit__(*exc)

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        return self.root / "model"

    def last_checkpoint(self) -> str | None:
        return get_last_checkpoint(str(self.checkpoints)) if self.checkpoints.is_dir() else None

    def staging(self) -> Path:
        """Where the trainer saves the model before it is shipped."""
        path = self.root / "model.partial"
        shutil.rmtree(path, ignore_errors=True)
        return path

    def ship(self, card_record: dict) -> Path:
        """The staged model shipped to `model/` with its `finetune.json`."""
        ship_model(self.root / "model.partial", self.model)
        shutil.rmtree(self.root / "model.partial", ignore_errors=True)
        return self.write_card_record(card_record)

    def write_card_record(self, card_record: dict) -> Path:
        """`model/finetune.json`: the task, data, metrics and baselines (what `rexbert push` puts on the card)."""
        atomic_write_json(self.model / FINETUNE_RECORD, card_record)
        return self.model

    def write_results(self, results: dict, markdown: str) -> Path:
        atomic_write_text(self.root / "results.md", markdown)
        return atomic_write_json(self.root / "results.json", results, indent=2)
