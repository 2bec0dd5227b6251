"""Pretraining on several processes: `torchrun --nproc_per_node 2` on CPU (gloo) runs the tiny recipe through
all three phases, its per-step training and validation losses equal one process accumulating 2 batches,
and the shared files are written once; the same through FSDP. Also continued pretraining of a ModernBERT
checkpoint, and the recipe's `training_args` (TensorBoard)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rexbert import cli

REPO_ROOT = Path(__file__).resolve().parents[1]
PHASES = ("phase1-general", "phase2-context", "phase3-anneal")
SMALL = [
    f"--set=phases.{name}.{key}={value}"
    for name, steps, evals in (("general", 8, 4), ("context", 6, 3), ("anneal", 6, 3))
    for key, value in (("steps", steps), ("eval_steps", evals), ("logging_steps", 1))
]
ACCUMULATE_TWO = [f"--set=phases.{name}.grad_accum=2" for name in ("general", "context", "anneal")]


def torchrun(output: Path, *extra: str) -> str:
    """The tiny recipe (SMALL) on 2 processes; returns their stderr."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "rexbert", "pretrain",
        "--recipe", "tiny", *SMALL, *extra, "--output", str(output),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def logged(output: Path) -> dict[tuple, float]:
    """(phase, step, metric) -> value of every training and validation loss, refusing duplicates."""
    values = {}
    for phase in PHASES:
        for line in (output / phase / "train_log.jsonl").read_text().splitlines():
            entry = json.loads(line)
            for key in ("loss", "eval/loss", "eval/loss/ecom", "eval/loss/general"):
                if key in entry:
                    assert (phase, entry["step"], key) not in values, "an entry was written twice"
                    values[(phase, entry["step"], key)] = entry[key]
    return values


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("single") / "out"
    assert cli.main(["pretrain", "--recipe", "tiny", *SMALL, *ACCUMULATE_TWO, "--output", str(output)]) == 0
    return output


def assert_same_training(output: Path, reference: Path) -> None:
    ours, theirs = logged(output), logged(reference)
    # a loss per step (8 + 6 + 6) and two validations per phase (overall, general, ecom)
    assert set(ours) == set(theirs) and len(ours) == 20 + 3 * 2 * 3
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-5), key
    summary = json.loads((output / "training_summary.json").read_text())
    reference_summary = json.loads((reference / "training_summary.json").read_text())
    assert [p["tokens"] for p in summary["phases"]] == [p["tokens"] for p in reference_summary["phases"]]
    assert [p["name"] for p in summary["phases"]] == ["general", "context", "anneal"]
    for phase in PHASES:  # every shared file is there, written by one process
        assert (output / phase / "final" / "model.safetensors").is_file()
        assert json.loads((output / phase / "phase_summary.json").read_text())["steps"] > 0
    assert not list(output.glob("tokenizer.partial*")) and (output / "tokenizer" / "tokenizer.json").is_file()


def assert_same_weights(output: Path, reference: Path) -> None:
    import torch
    from safetensors.torch import load_file

    ours, theirs = (
        load_file(output / "model" / "model.safetensors"),
        load_file(reference / "model" / "model.safetensors"),
    )
    assert set(ours) == set(theirs)
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-4, atol=1e-5, msg=name)


def test_torchrun_two_cpu_processes_equal_one_process_accumulating_two(one_process, tmp_path):
    torchrun(tmp_path / "ddp")
    assert_same_training(tmp_path / "ddp", one_process)


def test_fsdp_on_two_cpu_processes_equals_one_process(one_process, tmp_path):
    wrap = "--set=training_args={fsdp: full_shard, fsdp_config: {transformer_layer_cls_to_wrap: [RexBertEncoderLayer]}}"
    torchrun(tmp_path / "fsdp", wrap)
    assert_same_training(tmp_path / "fsdp", one_process)


# ---- elastic resume -----------------------------------------------------------------------------------

# Runs `rexbert` and stops every process right after checkpoint 4 of the context phase is complete, the way a
# lost node ends a job (the scheduler kills the job; it is resubmitted on what is left).
STOP_AFTER_CHECKPOINT = textwrap.dedent(
    """
    import os, sys
    from trainers.checkpoints import CheckpointChecksumsCallback
    on_save = CheckpointChecksumsCallback.on_save
    def on_save_then_stop(self, args, state, control, **kwargs):
        on_save(self, args, state, control, **kwargs)
        if "phase2-context" in args.output_dir and state.global_step == 4:
            os._exit(3)
    CheckpointChecksumsCallback.on_save = on_save_then_stop
    from rexbert.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)
CONTEXT_CHECKPOINTS = ["--set=phases.context.save_steps=2"]


def stopped_run(script: Path, output: Path, processes: int, *extra: str) -> None:
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)] if processes > 1 else []
    command = [
        sys.executable, *launcher, str(script), "pretrain", "--recipe", "tiny", *SMALL, *CONTEXT_CHECKPOINTS,
        *extra, "--output", str(output),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode != 0 and (output / "phase2-context" / "checkpoints" / "checkpoint-4").is_dir()
    assert not (output / "phase2-context" / "final").exists(), "stopped too late"


@pytest.fixture()
def stop_script(tmp_path) -> Path:
    script = tmp_path / "stop_after_checkpoint.py"
    script.write_text(STOP_AFTER_CHECKPOINT)
    return script


def test_two_processes_resumed_on_one(one_process, stop_script, tmp_path, caplog):
    """Started on 2 processes (1 batch each per step), stopped in phase 2, resumed on 1 process: it
    accumulates 2 batches per step, and every loss, token count and weight equals the 1-process run's."""
    output = tmp_path / "elastic"
    stopped_run(stop_script, output, 2)
    resume = [
        "pretrain",
        "--recipe",
        "tiny",
        *SMALL,
        *CONTEXT_CHECKPOINTS,
        "--output",
        str(output),
        "--resume",
    ]
    with caplog.at_level("INFO", logger="rexbert"):
        assert cli.main(resume) == 0
    assert f"resuming from {output / 'phase2-context' / 'checkpoints' / 'checkpoint-4'}" in caplog.text
    assert "1 process(es) accumulate 2 batches per step (the recipe's 1 at 2 process(es))" in caplog.text
    assert_same_training(output, one_process)
    assert_same_weights(output, one_process)


def test_one_process_resumed_on_two(one_process, stop_script, tmp_path):
    output = tmp_path / "elastic"
    stopped_run(stop_script, output, 1, *ACCUMULATE_TWO)
    stderr = torchrun(output, *CONTEXT_CHECKPOINTS, *ACCUMULATE_TWO, "--resume")
    assert f"resuming from {output / 'phase2-context' / 'checkpoints' / 'checkpoint-4'}" in stderr
    assert "2 process(es) accumulate 1 batches per step (the recipe's 2 at 1 process(es))" in stderr
    assert_same_training(output, one_process)
    assert_same_weights(output, one_process)


def test_a_batch_that_cannot_be_shared_is_one_line(tmp_path, capsys):
    """One batch per step on 1 process cannot be split over 2: each process says what to run on."""
    output = tmp_path / "one"
    assert (
        cli.main(["pretrain", "--recipe", "tiny", *SMALL, "--phase", "general", "--output", str(output)]) == 0
    )
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "rexbert", "pretrain",
        "--recipe", "tiny", *SMALL, "--resume", "--output", str(output),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode != 0 and errors, done.stderr[-3000:]
    assert all(
        "phase context: this output trains 1 batches per step (1 process(es) x phases.context.grad_accum=1 "
        "when it was started), which 2 processes cannot share evenly; run on 1 process(es)" in e
        for e in errors
    ), errors


def test_accelerate_configs_launch(tmp_path):
    """The shipped accelerate configs are accepted by `accelerate launch` (one CPU process here: accelerate
    starts several CPU processes only through MPI; several GPU processes on a GPU machine)."""
    for config in ("ddp", "fsdp"):
        command = [
            sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(REPO_ROOT / "trainers" / "accelerate" / f"{config}.yaml"), "--cpu", "--num_processes", "1",
            "--mixed_precision", "no", "-m", "rexbert", "-q", "pretrain", "--recipe", "tiny", "--max-steps", "2",
            "--output", str(tmp_path / config),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert (tmp_path / config / "model" / "model.safetensors").is_file()


def test_validation_documents_are_never_trained_on():
    from trainers.recipes import load_recipe
    from trainers.sources import RecipeData

    recipe = load_recipe("tiny")
    data = RecipeData(recipe)
    for name in recipe.sources:
        training = {row["text"] for row in data.dataset(name)}
        held_out = [row["text"] for row in data._split(name)[1]]
        assert len(held_out) == recipe.validation.documents_per_source
        assert not training & set(held_out)
        assert len(training) + len(held_out) == len(data._split(name)[0]) + len(data._split(name)[1])


def test_report_to_tensorboard_writes_event_files(tmp_path):
    pytest.importorskip("tensorboardX")
    output = tmp_path / "tb"
    args = [
        "pretrain",
        "--recipe",
        "tiny",
        "--max-steps",
        "2",
        "--set",
        "training_args.report_to=[tensorboard]",
    ]
    assert cli.main([*args, "--output", str(output)]) == 0
    assert len(list(output.glob("phase*/checkpoints/runs/*/events.out.tfevents.*"))) == 3


def test_continued_pretraining_of_a_modernbert_checkpoint(shared_data, tmp_path):
    """A `ModernBertForMaskedLM` saved with the OLMo tokenizer, continued through every phase: the checkpoint's
    tokenizer, vocabulary and shape are kept, and the result loads with AutoModel and sentence-transformers."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    import modeling_rexbert  # noqa: F401
    from modeling_rexbert.tokenization import build_modernbert_tokenizer, tokenizer_config_kwargs

    tokenizer = build_modernbert_tokenizer(
        str(shared_data / "tokenizers" / "allenai_gpt-neox-olmo-dolma-v1_5.json")
    )
    torch.manual_seed(0)
    config = ModernBertConfig(
        **tokenizer_config_kwargs(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=512, local_attention=16,
    )  # fmt: skip
    source = tmp_path / "modernbert"
    ModernBertForMaskedLM(config).save_pretrained(source)
    tokenizer.save_pretrained(source)

    output = tmp_path / "continued"
    assert (
        cli.main(
            ["pretrain", "--recipe", "tiny", *SMALL, "--init-from", str(source), "--output", str(output)]
        )
        == 0
    )
    summary = json.loads((output / "training_summary.json").read_text())
    assert summary["phases"][0]["init_from"] == "modernbert"  # the folder's name, never a local path
    assert summary["config"]["vocab_size"] == 50368 and summary["config"]["hidden_size"] == 32
    assert json.loads((output / "tokenizer" / "tokenizer_config.json").read_text())  # the checkpoint's own
    assert AutoTokenizer.from_pretrained(output / "model").get_vocab() == tokenizer.get_vocab()
    lexicon = json.loads((output / "saliency_lexicon.json").read_text())
    assert lexicon["vocab_size"] == len(tokenizer)  # built with the checkpoint's tokenizer
    model = AutoModel.from_pretrained(output / "model")
    assert type(model).__name__ == "RexBertModel" and model.config.hidden_size == 32
    embedding = SentenceTransformer(str(output / "model"), device="cpu").encode(["a steel frying pan"])
    assert embedding.shape == (1, 32)

    phase_three = tmp_path / "phase3-only"
    args = ["pretrain", "--recipe", "tiny", *SMALL, "--init-from", str(source), "--phase", "3"]
    assert cli.main([*args, "--output", str(phase_three)]) == 0
    assert (
        json.loads((phase_three / "training_summary.json").read_text())["phases"][0]["init_from"]
        == "modernbert"
    )


def test_an_fsdp_checkpoint_resumes_only_on_its_process_count(tmp_path):
    from types import SimpleNamespace

    from rexbert_core.typed_config import ConfigError
    from trainers.elastic import check_resume_processes

    with pytest.raises(
        ConfigError, match=r"checkpoint-4 was saved by 2 FSDP processes.*resume it on 2 processes"
    ):
        check_resume_processes(tmp_path / "checkpoint-4", 2, 1, SimpleNamespace(fsdp=["full_shard"]))
    check_resume_processes(tmp_path / "checkpoint-4", 2, 2, SimpleNamespace(fsdp=["full_shard"]))
    check_resume_processes(tmp_path / "checkpoint-4", 2, 1, SimpleNamespace(fsdp=[]))  # DDP: any count
