"""A run that diverges stops at the step it happens, on every process, before a non-finite number reaches the
weights, a checkpoint or the final model; the user gets one line naming the phase, the step and the last good
checkpoint. Before this, the Trainer logged the mean loss in place of the nan, trained on, saved nan
checkpoints over the good ones and finished with a model that predicts nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from rexbert import cli
from rexbert_core.typed_config import ConfigError, from_mapping
from trainers.checkpoints import CheckpointChecksumsCallback, checkpoint_problem
from trainers.divergence import DivergenceGuard, TrainingDiverged
from trainers.recipes import LRSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERAL = [
    "--recipe", "tiny", "--phase", "general", "--set", "lexicon.max_docs=100",
    "--set", "phases.general.steps=8", "--set", "phases.general.save_steps=2",
]  # fmt: skip


def last_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err), err
    return err[-1]


def test_a_learning_rate_that_diverges_stops_before_saving_nan(tmp_path, capsys):
    output = tmp_path / "run"
    diverging = ["--set", "phases.general.lr.peak=1e30", "--set", "phases.general.lr.warmup_steps=1"]
    assert cli.main(["pretrain", *GENERAL, *diverging, "--output", str(output)]) == 1
    error = last_error_line(capsys)
    found = re.search(r"phase 1 \(general\) diverged at step (\d+): the loss is nan", error)
    assert found, error
    step = int(found.group(1))
    checkpoints = output / "phase1-general" / "checkpoints"
    saved = sorted(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert saved and max(saved) < step, "a checkpoint at or after the diverged step was saved"
    assert f"the last good checkpoint is phase1-general/checkpoints/checkpoint-{max(saved)}" in error
    assert "phases.general.lr.peak" in error
    from safetensors.torch import load_file

    for number in saved:  # every checkpoint is complete, checksummed and finite
        assert checkpoint_problem(checkpoints / f"checkpoint-{number}", full=True) is None
        weights = load_file(checkpoints / f"checkpoint-{number}" / "model.safetensors")
        assert all(torch.isfinite(w).all() for w in weights.values())
    assert not (output / "phase1-general" / "final").exists() and not (output / "model").exists()
    logged = [json.loads(line) for line in (output / "phase1-general" / "train_log.jsonl").open()]
    assert all(entry["step"] < step for entry in logged)


# A process of two gets a nan loss on one batch (a bad row on its shard); the other's batch is fine.
NAN_ON_ONE_PROCESS = textwrap.dedent(
    """
    import os, sys
    import torch
    from trainers.trainer import RexBertTrainer
    compute_loss = RexBertTrainer.compute_loss
    def nan_on_rank_one(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
        if os.environ["RANK"] == "1" and self.state.global_step == 3:
            loss = result[0] if return_outputs else result
            loss = loss * float("nan")
            result = (loss, result[1]) if return_outputs else loss
        return result
    RexBertTrainer.compute_loss = nan_on_rank_one
    from rexbert.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_nan_on_one_process_stops_every_process_at_that_step(tmp_path):
    script = tmp_path / "nan_on_one_process.py"
    script.write_text(NAN_ON_ONE_PROCESS)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
        "pretrain", *GENERAL, "--output", str(tmp_path / "run"),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    # both processes report (their lines may interleave on the shared stderr), neither waits on the other
    found = re.findall(
        r"error: phase 1 \(general\) diverged at step 4: ([^;]+); nothing after it was saved "
        r"and the last good checkpoint is phase1-general/checkpoints/checkpoint-2",
        done.stderr,
    )
    # the other process's gradients, averaged with the nan ones, are nan too
    assert sorted(found) == ["a gradient is nan or inf (the loss was finite)", "the loss is nan"], (
        done.stderr[-3000:]
    )


def test_infinite_gradients_stop_the_step_before_the_weights_change():
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    guard = DivergenceGuard()
    loss = model(torch.ones(1, 3)).sum()
    loss.backward()
    guard.observe_loss(loss)
    model.weight.grad[0, 1] = float("inf")
    args = TrainingArguments(output_dir="unused", report_to=[])
    state = TrainerState(global_step=6)
    with pytest.raises(
        TrainingDiverged, match=r"diverged at step 7: a gradient is nan or inf \(the loss was finite\)"
    ):
        guard.on_pre_optimizer_step(args, state, TrainerControl(), model=model)
    assert all(torch.equal(b, p) for b, p in zip(before, model.parameters()))
    model.weight.grad.zero_()
    guard.on_pre_optimizer_step(args, state, TrainerControl(), model=model)  # finite again: no error


def test_a_checkpoint_of_nan_weights_gets_no_checksums(tmp_path):
    """Weights that overflowed through finite gradients are caught when saved: the checkpoint stays without
    its checksums (never resumed from) and the run stops."""
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.bias[1] = float("nan")
    checkpoint = tmp_path / "checkpoint-5"
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}")
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[])
    with pytest.raises(TrainingDiverged, match=r"step 5: weights are nan or inf \(bias\)"):
        CheckpointChecksumsCallback().on_save(
            args, TrainerState(global_step=5), TrainerControl(), model=model
        )
    assert not (checkpoint / "checksums.json").exists()


@pytest.mark.parametrize("value, parsed", [("nan", "nan"), ("inf", "inf"), ("-.inf", float("-inf"))])
def test_a_non_finite_number_in_a_config_is_refused(value, parsed, capsys):
    """As YAML writes them (`-.inf` reads as a float) and as strings (`nan` reads as one)."""
    with pytest.raises(ConfigError, match=r"lr.peak: expected a finite number"):
        from_mapping(LRSpec, {"peak": parsed}, "lr")
    assert cli.main(["pretrain", *GENERAL, "--set", f"phases.general.lr.peak={value}"]) == 2
    assert "phases.general.lr.peak: expected a finite number" in last_error_line(capsys)
