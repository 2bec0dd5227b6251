"""The `rexbert` command's edges: one error boundary (one line on stderr, status 2 for bad input and 1
for failures), `--version`, and -v / -q wired to the libraries' log levels."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from rexbert import __version__, cli


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_version():
    done = subprocess.run([sys.executable, "-m", "rexbert", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"rexbert {__version__}"


def test_bad_curate_input_is_one_line(tmp_path, capsys):
    assert cli.main(["curate", "run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "curation config not found" in one_line(capsys)
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "output_dir: out\nsources: [{name: a, path: a.jsonl}]\nstages: {classifier: {enabled: false}, "
        "qualty: {min_words: 3}}\n"
    )
    assert cli.main(["curate", "run", "--config", str(typo)]) == 2
    assert "stages: unknown field 'qualty' (did you mean 'quality'?)" in one_line(capsys)
    broken = tmp_path / "broken.yaml"
    broken.write_text("output_dir: [unclosed\n")
    assert cli.main(["curate", "run", "--config", str(broken)]) == 2
    assert "broken.yaml line 2: not valid YAML" in one_line(capsys)
    no_input = tmp_path / "no_input.yaml"
    no_input.write_text(
        f"output_dir: {tmp_path}/out\nsources: [{{name: a, path: {tmp_path}/a.jsonl}}]\n"
        "stages: {classifier: {enabled: false}}\n"
    )
    assert cli.main(["curate", "run", "--config", str(no_input)]) == 2
    assert "source 'a': input path" in one_line(capsys)
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"text": "a shoe"}\n')
    assert (
        cli.main(["curate", "train-classifier", "--data", str(labels), "--out", str(tmp_path / "m.bin")]) == 2
    )
    assert "needs a non-empty 'text' and a 'label'" in one_line(capsys)


def test_unexpected_failures_are_one_line_with_status_1_and_traceback_on_v(monkeypatch, capsys):
    import rexbert_core.sample_corpus.cli

    def broken(args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rexbert_core.sample_corpus.cli, "main", broken)
    assert cli.main(["sample-data", "--output", "x"]) == 1
    assert one_line(capsys) == "error: RuntimeError: disk on fire (rerun with -v for the traceback)"
    assert cli.main(["-v", "sample-data", "--output", "x"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("error: RuntimeError: disk on fire")


@pytest.mark.parametrize(
    "flags, ours, libraries",
    [
        ([], logging.INFO, logging.WARNING),
        (["-q"], logging.WARNING, logging.ERROR),
        (["-v"], logging.INFO, logging.INFO),
    ],
)
def test_verbosity_flags_set_every_logger(flags, ours, libraries, tmp_path):
    import datasets
    import transformers

    assert cli.main([*flags, "sample-data", "--output", str(tmp_path)]) == 0
    assert logging.getLogger("rexbert").level == ours and logging.getLogger("trainers").level == ours
    assert transformers.utils.logging.get_verbosity() == libraries
    assert datasets.utils.logging.get_verbosity() == libraries
    assert (tmp_path / "sources.json").is_file() and (tmp_path / "eval" / "ner" / "ner.jsonl").is_file()
    assert cli.main(["sample-data", "--output", str(tmp_path), *flags]) == 0  # flags after the subcommand too
    assert logging.getLogger("rexbert").level == ours
