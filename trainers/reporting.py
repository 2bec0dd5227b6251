"""Training logs on disk: JSON lines as training goes, JSON + CSV per phase, and a PNG of loss and
mixture weights over the steps of all phases."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback

from rexbert_core.safe_outputs import atomic_save_figure, atomic_write_text
from rexbert_core.typed_config import DataError

__all__ = [
    "LOG_JSONL",
    "ConsoleProgressCallback",
    "StepLogCallback",
    "plot_training",
    "read_step_log",
    "write_step_tables",
]

LOG_JSONL = "train_log.jsonl"
logger = logging.getLogger("trainers.pretrain")


class ConsoleProgressCallback(TrainerCallback):
    """One log line per tenth of a phase (step, loss, learning rate, tokens seen) and one per validation,
    in place of the Trainer's printed metrics dicts: the full log is in `train_log.jsonl` anyway."""

    def __init__(self, phase: int, phase_name: str, every_fraction: float = 0.1):
        self.phase, self.phase_name, self.every_fraction = phase, phase_name, every_fraction
        self._next_report = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "eval/loss" in logs:
            per_source = ", ".join(
                f"{key.removeprefix('eval/loss/')} {value:.4f}"
                for key, value in logs.items()
                if key.startswith("eval/loss/")
            )
            logger.info(
                "phase %d %s: step %d validation loss %.4f (%s) accuracy %.4f",
                self.phase,
                self.phase_name,
                state.global_step,
                logs["eval/loss"],
                per_source,
                logs.get("eval/mlm_accuracy", float("nan")),
            )
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        if state.global_step < self._next_report and state.global_step < state.max_steps:
            return
        self._next_report = state.global_step + max(1, int(state.max_steps * self.every_fraction))
        logger.info(
            "phase %d %s: step %d/%d loss %.4f lr %.2e tokens %s",
            self.phase,
            self.phase_name,
            state.global_step,
            state.max_steps,
            float(logs["loss"]),
            float(logs.get("learning_rate", 0.0)),
            f"{int(state.num_input_tokens_seen):,}",
        )


class StepLogCallback(TrainerCallback):
    """Appends every training log (loss, per-source metrics, schedule values) to
    `<directory>/train_log.jsonl`, tagged with the phase; on resume, entries past the resumed step
    are dropped first so the file matches the run."""

    def __init__(self, directory: str | Path, phase: int, phase_name: str):
        self.path = Path(directory) / LOG_JSONL
        self.phase, self.phase_name = phase, phase_name

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.path.is_file():
            kept = [entry for entry in read_step_log(self.path.parent) if entry["step"] <= state.global_step]
            atomic_write_text(self.path, "".join(json.dumps(entry) + "\n" for entry in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and ("loss" in logs or "eval/loss" in logs):
            entry = {"phase": self.phase, "phase_name": self.phase_name, "step": state.global_step, **logs}
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")


def read_step_log(directory: str | Path) -> list[dict]:
    """The entries of `<directory>/train_log.jsonl`. A last line cut short by a kill is dropped (the
    step it logged is logged again when training resumes); damage anywhere else is an error."""
    path = Path(directory) / LOG_JSONL
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entries.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise DataError(f"{path} line {number}: not a JSON log entry") from None
            logger.warning("%s: dropped a last line cut short (%d characters)", path, len(line))
    return entries


def write_step_tables(entries: list[dict], directory: str | Path, stem: str = "train_log") -> list[Path]:
    """The log as `<stem>.json` (a list of entries) and `<stem>.csv` (one column per metric)."""
    directory = Path(directory)
    json_path, csv_path = directory / f"{stem}.json", directory / f"{stem}.csv"
    atomic_write_text(json_path, json.dumps(entries, indent=1))
    atomic_write_text(csv_path, pd.DataFrame(entries).to_csv(index=False))
    return [json_path, csv_path]


def plot_training(entries: list[dict], path: str | Path) -> Path | None:
    """Four panels against the cumulative step of all phases (phases marked, tokens seen on the top axis):
    training loss overall and per source with the validation loss per source; mixture weights; learning
    rate; masking rate and guidance."""
    train = [e for e in entries if "loss" in e]
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    frame = pd.DataFrame(entries)
    offsets, total = {}, 0
    for phase, group in frame.groupby("phase", sort=True):
        offsets[phase] = total
        total += int(group["step"].max())
    frame["global"] = frame["step"] + frame["phase"].map(offsets)
    training = frame[frame["loss"].notna()] if "loss" in frame else frame.iloc[0:0]
    validation = frame[frame["eval/loss"].notna()] if "eval/loss" in frame else frame.iloc[0:0]
    fig, (loss_ax, mix_ax, lr_ax, mask_ax) = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    loss_ax.plot(training["global"], training["loss"], label="train loss", color="black", linewidth=2)
    for column in sorted(c for c in frame.columns if c.startswith("loss/")):
        loss_ax.plot(training["global"], training[column], label=f"train {column}", alpha=0.6)
    for column in sorted(c for c in frame.columns if c.startswith("eval/loss")):
        loss_ax.plot(
            validation["global"],
            validation[column],
            marker="o",
            markersize=3,
            linestyle="--",
            label="validation" + column.removeprefix("eval/loss").replace("/", " "),
        )
    loss_ax.set_ylabel("MLM loss")
    loss_ax.legend(loc="upper right", fontsize=7, ncol=2)
    for column in sorted(c for c in frame.columns if c.startswith("mixture/")):
        mix_ax.plot(training["global"], training[column], label=column.split("/", 1)[1])
    mix_ax.set_ylabel("mixture weight")
    mix_ax.set_ylim(0, 1)
    mix_ax.legend(loc="upper right", fontsize=8)
    if "learning_rate" in training:
        lr_ax.plot(training["global"], training["learning_rate"], color="tab:purple")
    lr_ax.set_ylabel("learning rate")
    for column, label in (("mask_rate", "mask rate"), ("guidance", "guided-MLM weight")):
        if column in training:
            mask_ax.plot(training["global"], training[column], label=label)
    mask_ax.set_ylabel("masking")
    mask_ax.set_ylim(0, 1.05)
    mask_ax.legend(loc="upper right", fontsize=8)
    mask_ax.set_xlabel("step (all phases)")
    for phase, offset in offsets.items():
        name = frame.loc[frame["phase"] == phase, "phase_name"].iloc[0]
        for ax in (loss_ax, mix_ax, lr_ax, mask_ax):
            ax.axvline(offset, color="grey", linestyle=":", linewidth=1)
        loss_ax.annotate(
            f"{phase}: {name}",
            (offset, 0.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, 4),
            textcoords="offset points",
            fontsize=8,
        )
    _tokens_axis(loss_ax, training, offsets, np)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=110)
    plt.close(fig)
    return Path(path)


def _tokens_axis(ax, training: pd.DataFrame, offsets: dict, np) -> None:
    """A top axis with the tokens seen (summed over phases), where the logs recorded them."""
    if "num_input_tokens_seen" not in training or training["num_input_tokens_seen"].isna().all():
        return
    seen = training[["phase", "global", "num_input_tokens_seen"]].dropna()
    ends = seen.groupby("phase")["num_input_tokens_seen"].max()
    before = {phase: float(ends[ends.index < phase].sum()) for phase in offsets}
    steps = seen["global"].to_numpy(dtype=float)
    tokens = (seen["num_input_tokens_seen"] + seen["phase"].map(before)).to_numpy(dtype=float)
    order = np.argsort(steps)
    steps, tokens = steps[order], tokens[order]
    if len(steps) < 2:
        return
    top = ax.secondary_xaxis(
        "top", functions=(lambda x: np.interp(x, steps, tokens), lambda t: np.interp(t, tokens, steps))
    )
    top.set_xlabel("tokens seen")
