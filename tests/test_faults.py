"""Fault injection: kills, concurrent commands, damaged and hostile inputs.

Every case here was a failure of an earlier version: a kill during a checkpoint write blocked every resume,
a killed curation left workers writing into its output, two commands shared one directory, a changed config
reused stale results, damaged files crashed or passed silently, and links or auto_map entries reached outside
a model directory. Each test reruns or retries the way a user would and checks the outcome against an
uninterrupted run, a counted reject, or a one-line error naming the file.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from process_helpers import REPO_ROOT, kill_when, python_json, rexbert_subprocess

from rexbert import cli
from rexbert_core.safe_outputs import DirectoryLock, process_id
from rexbert_core.sample_corpus import sample_documents

# A tiny pretraining: a few steps per phase, phase 2 checkpointing every 2 steps.
PRETRAIN = [
    "--recipe", "tiny",
    "--set", "phases.general.steps=4", "--set", "phases.context.steps=6", "--set", "phases.context.save_steps=2",
    "--set", "phases.anneal.steps=2", "--set", "lexicon.max_docs=200",
]  # fmt: skip

# Runs the `rexbert` command with torch.save patched to write part of one file and then SIGKILL the process,
# as a kill in the middle of that write would.
KILL_DURING_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    real_save = torch.save
    def save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and str(f).endswith(os.environ["KILL_WHEN_SAVING"]):
            with open(f, "wb") as handle:
                handle.write(b"PK\\x03\\x04 half an archive")
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)
    torch.save = save
    from rexbert.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err), err
    return err[-1]


def weights(directory: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(directory / "model.safetensors")


# ---- kills ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted_pretraining(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("pretrain") / "reference"
    assert cli.main(["pretrain", *PRETRAIN, "--output", str(output)]) == 0
    return output


def test_kill_during_a_checkpoint_write_then_resume(uninterrupted_pretraining, tmp_path):
    import torch

    output = tmp_path / "killed"
    script = tmp_path / "kill_during_save.py"
    script.write_text(KILL_DURING_SAVE)
    env = dict(os.environ, KILL_WHEN_SAVING="phase2-context/checkpoints/checkpoint-4/optimizer.pt")
    killed = subprocess.run(
        [sys.executable, str(script), "pretrain", *PRETRAIN, "--output", str(output)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    half = output / "phase2-context" / "checkpoints" / "checkpoint-4"
    assert (half / "optimizer.pt").stat().st_size < 100 and not (half / "trainer_state.json").exists()

    assert cli.main(["pretrain", *PRETRAIN, "--output", str(output), "--resume"]) == 0
    assert (output / "phase2-context" / "checkpoints" / "incomplete-checkpoint-4").is_dir()
    resumed, reference = weights(output / "model"), weights(uninterrupted_pretraining / "model")
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)


def test_a_damaged_newest_checkpoint_is_set_aside_and_resumed_before(
    uninterrupted_pretraining, tmp_path, caplog
):
    """Killed while saving checkpoint 6, and a weight byte of checkpoint 4 flipped (the file still loads):
    resuming sets both aside and continues from checkpoint 2, to the uninterrupted run's weights."""
    import torch

    output = tmp_path / "killed"
    script = tmp_path / "kill_during_save.py"
    script.write_text(KILL_DURING_SAVE)
    env = dict(os.environ, KILL_WHEN_SAVING="phase2-context/checkpoints/checkpoint-6/optimizer.pt")
    killed = subprocess.run(
        [sys.executable, str(script), "pretrain", *PRETRAIN, "--output", str(output)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    checkpoints = output / "phase2-context" / "checkpoints"
    weights_file = checkpoints / "checkpoint-4" / "model.safetensors"
    data = bytearray(weights_file.read_bytes())
    data[-3] ^= 0x01
    weights_file.write_bytes(bytes(data))

    with caplog.at_level("INFO", logger="rexbert"):
        assert cli.main(["pretrain", *PRETRAIN, "--output", str(output), "--resume"]) == 0
    assert (checkpoints / "incomplete-checkpoint-6").is_dir() and (
        checkpoints / "damaged-checkpoint-4"
    ).is_dir()
    assert f"resuming from {checkpoints / 'checkpoint-2'}" in caplog.text
    resumed, reference = weights(output / "model"), weights(uninterrupted_pretraining / "model")
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)


def write_big_sample(folder: Path, copies: int) -> list[dict]:
    """The sample corpus `copies` times over (distinct ids), one jsonl file per copy and source."""
    folder.mkdir(parents=True, exist_ok=True)
    documents = sample_documents(seed=0)
    for copy in range(copies):
        for source in ("listing", "review", "general"):
            rows = [{**d, "id": f"{d['id']}-{copy}"} for d in documents if d["source"] == source]
            (folder / f"{source}_{copy:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [{"name": "sample", "path": str(folder), "glob": "*.jsonl"}]


def curation_yaml(path: Path, output: Path, sources: list[dict], **extra) -> Path:
    import yaml

    config = {
        "output_dir": str(output),
        "tasks": 6,
        "workers": 2,
        "sources": sources,
        "stages": {"classifier": {"enabled": False}, "quality": {"min_words": 3}},
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def corpus(output: Path) -> list[tuple]:
    rows = [
        r for shard in sorted((output / "corpus").glob("*.parquet")) for r in pq.read_table(shard).to_pylist()
    ]
    return sorted((r["id"], r["text"]) for r in rows)


def test_kill_mid_curation_with_two_workers_then_rerun(tmp_path):
    sources = write_big_sample(tmp_path / "data", copies=6)
    reference = curation_yaml(tmp_path / "reference.yaml", tmp_path / "reference", sources)
    assert cli.main(["curate", "run", "--config", str(reference)]) == 0

    output = tmp_path / "killed"
    config = curation_yaml(tmp_path / "killed.yaml", output, sources)
    lock_records = []

    def some_tasks_done() -> bool:
        lock = output / ".rexbert.lock"
        if lock.is_file():
            try:
                lock_records.append(json.loads(lock.read_text() or "{}"))
            except ValueError:
                pass
        recorded = any(record.get("descendants") for record in lock_records)
        return recorded and len(list((output / "logs" / "filter" / "completions").glob("*"))) >= 1

    kill_when(rexbert_subprocess(["curate", "run", "--config", str(config)]), some_tasks_done)
    assert len(list((output / "logs" / "filter" / "completions").glob("*"))) < 6, "killed too late"
    started = {tuple(p) for record in lock_records for p in record.get("descendants", [])}
    assert started, "the lock recorded no worker processes"

    assert cli.main(["curate", "run", "--config", str(config)]) == 0  # takes over the stale lock
    assert not [p for p in started if process_id(p[0]) == p], "processes of the killed run are still alive"
    assert corpus(output) == corpus(tmp_path / "reference")
    killed_report = json.loads((output / "report" / "report.json").read_text())
    reference_report = json.loads((tmp_path / "reference" / "report" / "report.json").read_text())
    assert killed_report["totals"] == reference_report["totals"]
    assert killed_report["stages"] == reference_report["stages"]


def test_an_id_repeated_across_input_files_is_counted(tmp_path, capsys):
    """Two files (two tasks) share 30 ids on different documents: the repeats are counted in the report and
    on the console (the reader's own duplicate check sees one task only); the accounting still holds."""
    documents = [d for d in sample_documents(seed=0) if d["source"] in ("listing", "review")][:160]
    data = tmp_path / "data"
    data.mkdir()
    first = [{**d, "id": f"doc-{i}"} for i, d in enumerate(documents[:80])]
    second = [{**d, "id": f"doc-{i if i < 30 else i + 1000}"} for i, d in enumerate(documents[80:])]
    for name, rows in (("a.jsonl", first), ("b.jsonl", second)):
        (data / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = curation_yaml(
        tmp_path / "c.yaml", tmp_path / "out", [{"name": "s", "path": str(data), "glob": "*.jsonl"}]
    )
    assert cli.main(["curate", "run", "--config", str(config)]) == 0
    ids = [row_id for row_id, _ in corpus(tmp_path / "out")]
    repeated = len(ids) - len(set(ids))
    report = json.loads((tmp_path / "out" / "report" / "report.json").read_text())
    assert repeated > 0 and report["totals"]["duplicate_ids"] == repeated
    assert f"warning: {repeated:,} kept documents repeat an id" in capsys.readouterr().err


def test_sigterm_ends_the_command_and_its_workers(tmp_path):
    sources = write_big_sample(tmp_path / "data", copies=6)
    output = tmp_path / "out"
    config = curation_yaml(tmp_path / "c.yaml", output, sources)
    process = rexbert_subprocess(["curate", "run", "--config", str(config)])
    seen: set[tuple] = set()
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and process.poll() is None
        and not any(len(record.get("descendants", [])) >= 2 for record in [_lock_record(output)])
    ):
        time.sleep(0.02)
    seen |= {tuple(p) for p in _lock_record(output).get("descendants", [])}
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "error: interrupted" in err, err[-2000:]
    assert seen and not [p for p in seen if process_id(p[0]) == p], "workers outlived the command"
    assert _lock_record(output) == {}, "the lock still names a holder"


def _lock_record(output: Path) -> dict:
    try:
        return json.loads((output / ".rexbert.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


# ---- concurrent commands and changed configs ---------------------------------------------------------


def test_a_second_command_on_a_locked_directory_is_refused(tmp_path, capsys):
    sources = write_big_sample(tmp_path / "data", copies=1)
    config = curation_yaml(tmp_path / "c.yaml", tmp_path / "out", sources)
    with DirectoryLock(tmp_path / "out"):
        assert cli.main(["curate", "run", "--config", str(config)]) == 2
        assert f"is in use by another rexbert command (pid {os.getpid()}" in one_line(capsys)
        assert cli.main(["run", "--output", str(tmp_path / "out"), "--stop-after", "data"]) == 2
        assert f"(pid {os.getpid()}" in one_line(capsys)


def test_changed_configs_are_refused_naming_the_fields(tmp_path, capsys):
    sources = write_big_sample(tmp_path / "data", copies=1)
    config = curation_yaml(tmp_path / "c.yaml", tmp_path / "out", sources)
    assert cli.main(["curate", "run", "--config", str(config)]) == 0
    kept = len(corpus(tmp_path / "out"))
    changed = curation_yaml(tmp_path / "c.yaml", tmp_path / "out", sources, workers=1)  # no effect on output
    assert cli.main(["curate", "run", "--config", str(changed)]) == 0
    changed = curation_yaml(
        tmp_path / "c.yaml",
        tmp_path / "out",
        sources,
        stages={"classifier": {"enabled": False}, "quality": {"min_words": 150}},
    )
    assert cli.main(["curate", "run", "--config", str(changed)]) == 2
    assert "(stages.quality.min_words changed)" in one_line(capsys)
    assert cli.main(["curate", "run", "--config", str(changed), "--restart"]) == 0
    assert len(corpus(tmp_path / "out")) < kept  # redone with the new threshold, not the stale result

    pretrain = tmp_path / "pretrain"
    quick = [*PRETRAIN, "--max-steps", "2", "--phase", "1", "--output", str(pretrain)]
    assert cli.main(["pretrain", *quick]) == 0
    assert cli.main(["pretrain", *quick, "--resume", "--set", "phases.general.mask_rate=0.2"]) == 2
    assert "(recipe.phases.general.mask_rate changed)" in one_line(capsys)
    assert cli.main(["pretrain", *quick]) == 2
    assert "already holds phase(s) [1] of this recipe; pass --resume" in one_line(capsys)


def test_foreign_directories_are_never_written_or_deleted(tmp_path, capsys):
    notes = tmp_path / "out" / "model" / "NOTES.md"
    notes.parent.mkdir(parents=True)
    notes.write_text("keep")
    for args in (
        ["run", "--output", str(tmp_path / "out")],
        ["run", "--output", str(tmp_path / "out"), "--restart"],
    ):
        assert cli.main(args) == 2
        assert "is not empty and was not written by `rexbert run` (model)" in one_line(capsys)
    assert notes.read_text() == "keep"
    # --restart removes what the run created, and only that
    run_dir = tmp_path / "run"
    assert cli.main(["run", "--output", str(run_dir), "--stop-after", "data"]) == 0
    (run_dir / "mine.txt").write_text("mine")
    assert (
        cli.main(["run", "--output", str(run_dir), "--stop-after", "data", "--restart", "--set", "seed=3"])
        == 0
    )
    assert (run_dir / "mine.txt").read_text() == "mine" and (run_dir / "stages" / "data.done").is_file()


def test_user_files_inside_the_outputs_survive_resume_and_restart(uninterrupted_pretraining, tmp_path):
    """A user's file in `model/` or in a phase folder is kept by --resume (which relinks `model/`) and by
    --restart (which deletes everything the pretraining wrote), and the restarted run trains as before."""
    import shutil

    import torch

    output = tmp_path / "out"
    shutil.copytree(uninterrupted_pretraining, output)
    mine = {output / "model" / "NOTES.md": "model notes", output / "phase1-general" / "eval.txt": "my eval"}
    for path, text in mine.items():
        path.write_text(text)
    assert cli.main(["pretrain", *PRETRAIN, "--output", str(output), "--resume"]) == 0
    assert all(path.read_text() == text for path, text in mine.items())

    assert cli.main(["pretrain", *PRETRAIN, "--output", str(output), "--restart"]) == 0
    assert all(path.read_text() == text for path, text in mine.items())
    resumed, reference = weights(output / "model"), weights(uninterrupted_pretraining / "model")
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)
    # --restart deleted the first run's outputs: the phase folder holds one run's log, and the user's file
    log = (output / "phase1-general" / "train_log.jsonl").read_text().splitlines()
    assert len(log) == len(
        (uninterrupted_pretraining / "phase1-general" / "train_log.jsonl").read_text().splitlines()
    )


def test_a_source_glob_never_reads_the_pretrainings_own_files(uninterrupted_pretraining, tmp_path, caplog):
    """`--source ecom=DATA/**/*.jsonl` with the output inside DATA: the run's own `train_log.jsonl` files
    are left out, on the first call and on every resume, so resuming trains on the same documents."""
    import torch

    data = tmp_path / "data"
    data.mkdir()
    rows = [d for d in sample_documents(seed=0) if d["source"] in ("listing", "review")]
    (data / "ecom.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    explicit, globbed = tmp_path / "explicit", data / "out"
    assert (
        cli.main(
            ["pretrain", *PRETRAIN, "--source", f"ecom={data / 'ecom.jsonl'}", "--output", str(explicit)]
        )
        == 0
    )
    source = ["--source", f"ecom={data}/**/*.jsonl", "--output", str(globbed)]
    assert cli.main(["pretrain", *PRETRAIN, *source, "--phase", "general"]) == 0
    assert (globbed / "phase1-general" / "train_log.jsonl").is_file()
    with caplog.at_level("WARNING"):
        assert cli.main(["pretrain", *PRETRAIN, *source, "--resume"]) == 0
    assert "sources.ecom: left out 1 file(s) of the output directory" in caplog.text
    ours, reference = weights(globbed / "model"), weights(explicit / "model")
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)


# ---- damaged and hostile inputs ----------------------------------------------------------------------


def test_damaged_compressed_inputs_are_counted_rejects(tmp_path):
    from curation.config import config_from_dict
    from curation.run import run_pipeline

    data = tmp_path / "data"
    data.mkdir()
    good = [
        {"id": f"g{i}", "text": f"a steel frying pan with a glass lid, number {i} of the kitchen range"}
        for i in range(40)
    ]
    lines = "".join(json.dumps(r) + "\n" for r in good).encode()
    (data / "good.jsonl.gz").write_bytes(gzip.compress(lines))
    other = "".join(json.dumps({**r, "id": f"t{i}"}) + "\n" for i, r in enumerate(good)).encode()
    (data / "truncated.jsonl.gz").write_bytes(gzip.compress(other)[:-40])  # ends early
    (data / "garbage.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00 not a gzip stream at all")
    odd = [
        {"id": "dup", "text": "a cotton t-shirt in navy blue with a relaxed fit and short sleeves"},
        {"id": "dup", "text": "a wool scarf in grey, long enough to wrap twice around the neck"},
        {"id": 7, "text": "a leather wallet with six card slots and a coin pocket in brown"},
        {"id": 7.5, "text": "a ceramic mug that holds a pint of tea and survives the dishwasher"},
    ]
    (data / "odd_ids.jsonl").write_text("".join(json.dumps(r) + "\n" for r in odd))
    config = config_from_dict(
        {
            "output_dir": str(tmp_path / "out"),
            "progress": False,
            "sources": [{"name": "shop", "path": str(data), "glob": "*.jsonl*"}],
            "stages": {
                "classifier": {"enabled": False},
                "language": {"enabled": False},
                "exact_dedup": {"enabled": False},
                "minhash_dedup": {"enabled": False},
            },
        }
    )
    report = run_pipeline(config)
    reasons = report["stages"][0]["reasons"]
    assert (
        reasons["unreadable_file"] == 2 and reasons["duplicate_id"] == 1 and reasons["id_not_a_string"] == 1
    )
    assert report["totals"]["accounting_ok"]
    rejects = [
        json.loads(line)
        for p in (tmp_path / "out" / "rejects").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    unreadable = {Path(r["file"]).name: r["raw"] for r in rejects if r["reason"] == "unreadable_file"}
    assert set(unreadable) == {"truncated.jsonl.gz", "garbage.jsonl.gz"}
    assert str(tmp_path) not in (tmp_path / "out" / "report" / "report.json").read_text()  # it is published
    ids = {row[0] for row in corpus(tmp_path / "out")}
    assert "dup" in ids and "7" in ids and len([i for i in ids if i.startswith("g")]) >= 40


def test_damaged_model_files_are_refused_by_name(tmp_path, capsys):
    from curation.classifier import TrainSettings, train_classifier

    model = tmp_path / "ecom.bin"
    texts = ["red running shoes size 10", "the council met on tuesday"] * 20
    train_classifier(texts, [True, False] * 20, model, TrainSettings(epoch=2, threads=1))
    model.write_bytes(model.read_bytes()[:-1000])  # truncated after it was written
    from curation.classifier import EcomClassifier
    from rexbert_core.typed_config import DataError

    with pytest.raises(DataError, match=r"ecom.bin: damaged or truncated"):
        EcomClassifier(model)

    checkpoint = tmp_path / "model"
    from hub_fixtures import save_tiny_model

    save_tiny_model(checkpoint)
    weights_file = checkpoint / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes()[:-64])
    assert (
        cli.main(
            [
                "eval",
                "--model",
                str(checkpoint),
                "--suite",
                "ner",
                "--data",
                "ner=x.jsonl",
                "--output",
                str(tmp_path / "e"),
            ]
        )
        == 2
    )
    assert "model.safetensors: damaged or truncated weights" in one_line(capsys)
    assert cli.main(["push", "model", str(checkpoint), "org/name", "--dry-run"]) == 2
    assert "model.safetensors: damaged or truncated weights" in one_line(capsys)
    assert (
        cli.main(
            ["eval", "--model", str(tmp_path / "missing"), "--suite", "ner", "--output", str(tmp_path / "e")]
        )
        == 2
    )
    assert "missing: no such model directory" in one_line(capsys)


def test_bad_pretraining_input_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert (
        cli.main(["pretrain", *PRETRAIN, "--source", f"ecom={empty}", "--output", str(tmp_path / "a")]) == 2
    )
    assert f"sources.ecom: '{empty}' holds no records" in one_line(capsys)
    assert cli.main(["pretrain", *PRETRAIN, "--max-steps", "0", "--output", str(tmp_path / "b")]) == 2
    assert "--max-steps must be positive" in one_line(capsys)


def test_truncated_training_log_line_is_tolerated(tmp_path):
    from rexbert_core.typed_config import DataError
    from trainers.reporting import read_step_log

    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 5.0}\n{"step": 2, "loss": 4.0}\n{"step": 3, "lo')
    assert [e["step"] for e in read_step_log(tmp_path)] == [1, 2]
    log.write_text('{"step": 1, "loss": 5.0}\n{"ste\n{"step": 3, "loss": 4.0}\n')
    with pytest.raises(DataError, match="train_log.jsonl line 2"):
        read_step_log(tmp_path)


def test_links_out_of_a_model_directory_and_bad_auto_map_are_refused(tmp_path, capsys):
    from hub_fixtures import save_tiny_model

    from hub_cards.publish import plan_model_upload
    from modeling_rexbert.convert import convert

    secret = tmp_path / "token.txt"
    secret.write_text("hf_secret")
    model = tmp_path / "model"
    save_tiny_model(model)
    (model / "notes.txt").symlink_to(secret)
    plan = plan_model_upload(model, "org/name")
    assert "notes.txt" not in plan.paths
    assert any(path == "notes.txt" and "outside the directory: refused" in why for path, why in plan.skipped)
    assert cli.main(["push", "model", str(model), "org/name", "--dry-run", "--no-card"]) == 0
    assert "skipped notes.txt: a link to" in capsys.readouterr().out
    converted = convert(model, tmp_path / "converted", "modernbert")
    assert not (converted / "notes.txt").exists()

    config = json.loads((model / "config.json").read_text())
    config["auto_map"]["AutoModel"] = "../../x.RexBertModel"
    (model / "config.json").write_text(json.dumps(config))
    assert cli.main(["push", "model", str(model), "org/name", "--dry-run", "--no-card", "--remote-code"]) == 2
    assert "'../../x.RexBertModel' is not a module.Class reference" in one_line(capsys)


def test_no_absolute_local_path_is_published(tmp_path):
    from hub_cards import CardOptions, build_model_card

    output = tmp_path / "run"
    assert cli.main(["pretrain", *PRETRAIN, "--max-steps", "2", "--output", str(output)]) == 0
    summary = (output / "training_summary.json").read_text()
    assert str(tmp_path) not in summary and "/" not in json.loads(summary)["model"]
    results = {"model": str(output / "model"), "created": "2026-01-01T00:00:00", "suites": {}}
    card = build_model_card(output / "model", CardOptions(), results=results)
    assert str(tmp_path) not in str(card)


# ---- a full disk ---------------------------------------------------------------------------------------

# Trains the e-commerce classifier with the file size limited (SIGXFSZ ignored, so a write past the limit
# fails with EFBIG as one on a full disk fails with ENOSPC), and reports what was left.
CLASSIFIER_ON_A_FULL_DISK = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    from curation.classifier import TrainSettings, train_classifier
    from rexbert_core.sample_corpus import sample_documents
    documents = sample_documents(seed=0)
    texts = [d["text"] for d in documents]
    labels = [d["source"] != "general" for d in documents]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
    out = Path(sys.argv[1])
    try:
        train_classifier(texts, labels, out, TrainSettings(bucket=20000, dim=16))
        error = None
    except Exception as raised:
        error = f"{type(raised).__name__}: {raised}"
    print(json.dumps({"error": error, "files": sorted(p.name for p in out.parent.iterdir())}))
    """
)


@pytest.mark.parametrize("limit", [300_000, 1 << 40])
def test_a_full_disk_leaves_no_truncated_classifier(tmp_path, limit):
    """fastText ignores its write errors; the classifier is complete under its name or absent, and a
    short write is one error naming the file."""
    out = tmp_path / "classifier" / "ecom.bin"
    out.parent.mkdir()
    result = python_json(CLASSIFIER_ON_A_FULL_DISK, str(out), str(limit), cwd=REPO_ROOT)
    if limit == 1 << 40:  # no limit that matters: the model is saved and loads
        assert result == {"error": None, "files": ["ecom.bin", "ecom.bin.sha256.json"]}
        return
    assert result["files"] == [], result
    assert re.fullmatch(
        r"RunError: .*ecom\.bin: fastText wrote [\d,]+ of [\d,]+ bytes \(disk full\?\); "
        r"nothing was saved",
        result["error"],
    ), result
