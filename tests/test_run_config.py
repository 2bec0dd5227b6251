"""`rexbert run` configs and bookkeeping: validation errors, config changes, half-written checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainers.run import (
    CONFIG_DIR,
    Layout,
    RunConfigError,
    curation_config_dict,
    load_run_config,
    pretrain_recipe_dict,
    run,
    set_aside_incomplete_checkpoints,
)


def test_default_config_loads_and_overrides_apply():
    config = load_run_config(None, ["pretrain.overrides.phases.general.steps=7", "eval.suites=[ner]"])
    assert config["data"]["sample_corpus"] is True
    assert config["pretrain"]["overrides"]["phases"]["general"]["steps"] == 7
    assert config["pretrain"]["overrides"]["phases"]["context"]["save_steps"] == 20  # untouched siblings kept
    assert config["eval"]["suites"] == ["ner"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("evaluation.suites=[ner]", "unknown section"),
        ("curation.corpora=null", "curation.corpora"),
        ("data.sample_corpus=false", "data: set sample_corpus"),
    ],
)
def test_bad_configs_name_the_problem(override, message):
    with pytest.raises(RunConfigError, match=message):
        load_run_config(None, [override])


def test_config_extends_and_missing_file(tmp_path):
    child = tmp_path / "mine.yaml"
    child.write_text("extends: run_default.yaml\nseed: 3\n")
    assert load_run_config(child)["seed"] == 3
    with pytest.raises(FileNotFoundError):
        load_run_config(tmp_path / "nope.yaml")


def test_corpora_and_pretrain_sources_point_at_the_run_directory(tmp_path):
    config = load_run_config()
    layout = Layout(tmp_path)
    with pytest.raises(RunConfigError, match="classifier stage has not trained"):
        curation_config_dict(config, layout, "ecom")
    layout.stages.mkdir()
    layout.done_marker("classifier").write_text(
        json.dumps({"outputs": {"model": "ecom.bin", "threshold": 0.4}})
    )
    ecom = curation_config_dict(config, layout, "ecom")
    assert ecom["stages"]["classifier"] == {"enabled": True, "model": "ecom.bin", "threshold": 0.4}
    general = curation_config_dict(config, layout, "general")
    assert [s["name"] for s in ecom["sources"]] == ["listing", "review", "general"]
    assert [s["name"] for s in general["sources"]] == ["general"]
    assert ecom["output_dir"] == str(tmp_path / "curation" / "ecom")
    assert general["stages"]["classifier"]["enabled"] is False
    recipe = pretrain_recipe_dict(config, layout)
    assert recipe["sources"]["ecom"]["data_files"] == str(
        tmp_path / "curation" / "ecom" / "corpus" / "*.parquet"
    )
    assert "sample_corpus" not in recipe["sources"]["general"]
    with pytest.raises(RunConfigError, match="not a curated corpus"):
        pretrain_recipe_dict(load_run_config(None, ["pretrain.sources.ecom=shopping"]), layout)
    with pytest.raises(RunConfigError, match="unknown sources"):
        curation_config_dict(
            load_run_config(None, ["curation.corpora.general.sources=[news]"]), layout, "general"
        )


def test_rerun_with_a_different_config_is_refused(tmp_path):
    run(load_run_config(), tmp_path, stop_after="data")
    assert (tmp_path / "stages" / "data.done").is_file() and (
        tmp_path / "data" / "corpus" / "listing.jsonl"
    ).is_file()
    run(load_run_config(), tmp_path, stop_after="data")  # same config: fine, nothing redone
    with pytest.raises(RunConfigError, match="different config"):
        run(load_run_config(None, ["seed=5"]), tmp_path, stop_after="data")


def test_half_written_checkpoints_are_set_aside(tmp_path):
    checkpoints = tmp_path / "phase2-context" / "checkpoints"
    complete, partial = checkpoints / "checkpoint-4", checkpoints / "checkpoint-8"
    for directory in (complete, partial):
        directory.mkdir(parents=True)
        (directory / "trainer_state.json").write_text("{}")
    (complete / "mixture_state.json").write_text("{}")
    renamed = set_aside_incomplete_checkpoints(tmp_path)
    assert renamed == [checkpoints / "incomplete-checkpoint-8"]
    assert complete.is_dir() and not partial.exists()


def test_shared_data_config_names_existing_files(shared_data):
    """Its paths are relative to the repository root (../shared/data); each must exist there."""
    config = load_run_config(CONFIG_DIR / "run_shared_data.yaml")
    relative = lambda p: shared_data / Path(p).relative_to("../shared/data")  # noqa: E731
    for source in config["data"]["sources"]:
        assert relative(source["path"]).is_file(), source
    for key, value in config["eval"]["data"].items():
        for path in value if isinstance(value, list) else [value]:
            assert relative(path).exists(), (key, path)
    assert relative(config["pretrain"]["overrides"]["tokenizer"]["path"]).is_file()
