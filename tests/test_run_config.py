"""`rexbert run` configs: the whole config is checked when it is planned (pretraining overrides, curation
settings and eval budgets included, every stage's typed config built once), the run seed reaches every stage
by one stated rule, and bookkeeping refuses a changed config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rexbert import cli
from rexbert.pipeline import CONFIG_DIR, load_run, read_run_config, run
from rexbert_core.typed_config import ConfigError


def load_run_config(path=None, overrides=None):
    """Read and plan a run (every stage configured), as the command does; the config."""
    return load_run(path, overrides, "/tmp/rexbert-never-written").config


def test_default_config_loads_and_overrides_apply():
    config = load_run_config(None, ["pretrain.overrides.phases.general.steps=7", "eval.suites=[ner]"])
    assert config.data.sample_corpus is True
    assert config.pretrain.overrides["phases"]["general"]["steps"] == 7
    assert config.pretrain.overrides["phases"]["context"]["save_steps"] == 20  # untouched siblings kept
    assert config.eval.suites == ["ner"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("evaluation.suites=[ner]", "unknown field 'evaluation' (did you mean 'eval'?)"),
        ("eval.budgte.all.epochs=1", "run config.eval: unknown field 'budgte' (did you mean 'budget'?)"),
        (
            "eval.budget.all.epochz=1",
            "run config.eval.budget.all: unknown field 'epochz' (did you mean 'epochs'?)",
        ),
        ("eval.budget.all.epochs=many", "run config.eval.budget.all.epochs: expected float, got str 'many'"),
        ("eval.budget.glu.epochs=1", "run config.eval.budget: 'glu' is not one of ('all', 'esci-tokens',"),
        ("eval.suites=[nerr]", "run config.eval.suites: 'nerr' is not one of"),
        ("eval.options.glue.tasks=[sst]", "eval.options.glue.tasks: 'sst' is not one of"),
        ("eval.options.ner.tasks=[sst2]", "eval.options.ner: unknown field 'tasks'"),
        ("classifier.max_per_sorce=10", "run config.classifier: unknown field 'max_per_sorce' (did you mean"),
        ("curation.corpora=null", "run config.curation.corpora: expected a mapping, got NoneType None"),
        ("data.sample_corpus=false", "run config.data: set sample_corpus: true"),
        ("seed=zero", "run config.seed: expected int, got str 'zero'"),
        (
            "curation.settings.stages.quality.min_wrods=3",
            "run config.curation.settings.stages.quality: unknown field 'min_wrods' (did you mean 'min_words'?)",
        ),
        ("curation.settings.workers=two", "curation.settings.workers: expected int, got str 'two'"),
        (
            "curation.corpora.general.sources=[news]",
            "curation.corpora.general.sources: unknown sources ['news']",
        ),
        ("pretrain.overrides.phases.general.stepz=3", "unknown field 'stepz' (did you mean 'steps'?)"),
        ("pretrain.overrides.phases.general.mixture.start.ecom=-1", "mixture.start: weights must be >= 0"),
        (
            "pretrain.overrides.model.attn_implementation=flashy",
            "attn_implementation: 'flashy' is not one of",
        ),
        ("pretrain.sources.ecom=shopping", "pretrain.sources.ecom: 'shopping' is not a curated corpus"),
        (
            "cards.model.licence=mit",
            "run config.cards.model: unknown field 'licence' (did you mean 'license'?)",
        ),
    ],
)
def test_bad_configs_name_the_problem_when_loaded(override, message):
    with pytest.raises(ConfigError) as error:
        load_run_config(None, [override])
    assert message in str(error.value)


def test_a_typo_stops_the_command_before_any_stage_in_one_line(tmp_path, capsys):
    output = tmp_path / "run"
    assert cli.main(["run", "--output", str(output), "--set", "eval.budgte.all.epochs=1"]) == 2
    stderr = capsys.readouterr().err.strip().splitlines()
    assert stderr == [
        "error: run config.eval: unknown field 'budgte' (did you mean 'budget'?); EvalSection has "
        "['budget', 'data', 'options', 'suites']"
    ]
    assert not output.exists()  # nothing ran, nothing was written


def test_run_seed_reaches_every_stage_by_one_rule(tmp_path):
    plan = load_run(None, ["seed=7", "eval.budget.ner.seed=3"], tmp_path)
    jobs = plan.jobs
    assert jobs["data"].seed == 7 and jobs["classifier"].settings.seed == 7
    assert jobs["pretrain"].seed == 7  # over the recipe file's seed: 42
    assert {s: b.seed for s, b in jobs["eval"].budgets.items()} == {
        **dict.fromkeys(plan.config.eval.suites, 7),
        "ner": 3,
    }
    assert all(c.stages.minhash_dedup.seed == 7 for c in jobs["curate"].values())
    seeds = plan.resolved["seeds"]
    assert seeds["pretrain"] == "7 (from seed, over the recipe file's 42)"
    assert seeds["eval.ner"] == "3 (from eval.budget.ner.seed)" and seeds["classifier"] == "7 (from seed)"
    explicit = load_run(
        None,
        ["seed=7", "pretrain.overrides.seed=42", "classifier.train.seed=5", "eval.budget.all.seed=9"],
        tmp_path,
    )
    assert (
        explicit.jobs["pretrain"].seed == 42 and explicit.jobs["classifier"].settings.seed == 5
    )  # a section's own
    assert {b.seed for b in explicit.jobs["eval"].budgets.values()} == {9}
    assert explicit.resolved["seeds"]["pretrain"] == "42 (from pretrain.overrides.seed)"


def test_the_resolved_seeds_are_written_with_the_run_config(tmp_path):
    plan = load_run(None, ["seed=3"], tmp_path)
    run(plan, stop_after="data")
    written = yaml.safe_load((tmp_path / "run_config.yaml").read_text())
    assert written["seed"] == 3 and written["resolved"]["seeds"]["pretrain"].startswith("3 (from seed")
    assert "a section's own seed" in (tmp_path / "run_config.yaml").read_text()  # the rule, stated with it


def test_config_extends_and_missing_file(tmp_path):
    child = tmp_path / "mine.yaml"
    child.write_text("extends: run_default.yaml\nseed: 3\n")
    assert read_run_config(child).seed == 3
    with pytest.raises(ConfigError, match="neither a file nor a shipped run config"):
        read_run_config(tmp_path / "nope.yaml")


def test_relative_paths_are_taken_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = read_run_config(None, ["classifier.examples=labels/examples.jsonl", "output=runs/x"])
    assert config.classifier.examples == str(tmp_path / "labels" / "examples.jsonl")
    assert config.output == str(tmp_path / "runs" / "x")


def test_corpora_and_pretrain_sources_point_at_the_run_directory(tmp_path):
    plan = load_run(None, None, tmp_path)
    ecom, general = plan.jobs["curate"]["ecom"], plan.jobs["curate"]["general"]
    assert ecom.stages.classifier.enabled and ecom.stages.classifier.threshold is None  # the trained one's
    assert ecom.stages.classifier.model == str(tmp_path / "classifier" / "ecom_classifier.bin")
    assert [s.name for s in ecom.sources] == ["listing", "review", "general"]
    assert [s.name for s in general.sources] == ["general"]
    assert ecom.output_dir == str(tmp_path / "curation" / "ecom")
    assert general.stages.classifier.enabled is False
    recipe = plan.jobs["pretrain"]  # pretrain.tokenize: the tokenize stage's shards and tokenizer
    assert (
        recipe.sources["ecom"].shards == str(tmp_path / "tokens")
        and recipe.sources["ecom"].data_files is None
    )
    assert recipe.tokenizer.path == str(tmp_path / "tokenizer") and recipe.tokenizer.train_vocab_size is None
    text_recipe = plan.jobs["tokenize"].text_recipe  # what the tokenize stage trains the tokenizer on
    assert text_recipe.sources["ecom"].data_files == str(
        tmp_path / "curation" / "ecom" / "corpus" / "*.parquet"
    )
    assert (
        text_recipe.sources["general"].sample_corpus is None and text_recipe.sources["general"].shards is None
    )
    assert plan.jobs["tokenize"].shards.sources == {
        "general": [str(tmp_path / "curation" / "general" / "corpus" / "*.parquet")],
        "ecom": [str(tmp_path / "curation" / "ecom" / "corpus" / "*.parquet")],
    }


def test_rerun_with_a_different_config_is_refused(tmp_path):
    run(load_run(None, None, tmp_path), stop_after="data")
    assert (tmp_path / "stages" / "data.done").is_file() and (
        tmp_path / "data" / "corpus" / "listing.jsonl"
    ).is_file()
    assert json.loads((tmp_path / "data" / "corpus" / "sources.json").read_text())[0]["name"] == "listing"
    run(load_run(None, None, tmp_path), stop_after="data")  # same config: fine, nothing redone
    with pytest.raises(ConfigError, match=r"was written with another config \(seed changed\)"):
        run(load_run(None, ["seed=5"], tmp_path), stop_after="data")


def test_incomplete_checkpoints_are_set_aside(tmp_path):
    """What a kill during a checkpoint save leaves behind is set aside, and so is the newest checkpoint whose
    files no longer match their checksums; the newest good checkpoint stays."""
    import torch
    from safetensors.torch import save_file

    from rexbert_core.safe_outputs import record
    from trainers.checkpoints import set_aside_incomplete_checkpoints

    checkpoints = tmp_path / "phase2-context" / "checkpoints"

    def checkpoint(step: int) -> Path:
        directory = checkpoints / f"checkpoint-{step}"
        directory.mkdir(parents=True)
        save_file({"w": torch.ones(4, 4)}, directory / "model.safetensors")
        torch.save({"state": {}}, directory / "optimizer.pt")
        (directory / "trainer_state.json").write_text('{"global_step": 4}')
        (directory / "mixture_state.json").write_text("{}")
        record(directory, [p.name for p in directory.iterdir()])
        return directory

    complete = checkpoint(4)
    empty = checkpoints / "checkpoint-6"
    empty.mkdir()
    no_state = checkpoint(8)
    (no_state / "trainer_state.json").unlink()
    truncated_state = checkpoint(10)
    (truncated_state / "trainer_state.json").write_text('{"global_st')
    empty_optimizer = checkpoint(12)
    (empty_optimizer / "optimizer.pt").write_bytes(b"")
    short_weights = checkpoint(14)
    data = (short_weights / "model.safetensors").read_bytes()
    (short_weights / "model.safetensors").write_bytes(data[:-10])
    (checkpoint(16) / "checksums.json").unlink()  # killed before its last file
    flipped = checkpoint(18) / "model.safetensors"
    data = bytearray(flipped.read_bytes())
    data[-3] ^= 1  # a weight's byte: the file still loads, with another value
    flipped.write_bytes(bytes(data))
    renamed = set_aside_incomplete_checkpoints(tmp_path)
    expected = ["damaged-checkpoint-18", *(f"incomplete-checkpoint-{n}" for n in (10, 12, 14, 16, 6, 8))]
    assert sorted(p.name for p in renamed) == expected
    assert complete.is_dir() and [p.name for p in checkpoints.glob("checkpoint-*")] == ["checkpoint-4"]


def test_shared_data_config_names_existing_files(shared_data, monkeypatch):
    """Its paths are relative to the repository root (../shared/data); each must exist there."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    config = read_run_config(CONFIG_DIR / "run_shared_data.yaml")
    for source in config.data.sources:
        assert Path(source.path).is_file(), source
    for key, paths in config.eval.data.items():
        for path in paths:
            assert Path(path).exists(), (key, path)
    assert Path(config.pretrain.overrides["tokenizer"]["path"]).is_file()
