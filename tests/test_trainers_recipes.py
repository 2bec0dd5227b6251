"""Phase recipes: every shipped preset follows the three-phase plan, and malformed recipes stop with
an error that names the field."""

from __future__ import annotations

import typing

import pytest
import yaml

from rexbert_core.typed_config import ConfigError, DataError, apply_overrides
from trainers.recipes import load_recipe, read_recipe_dict

NO_VALIDATION = ["validation=null", *(f"phases.{p}.eval_steps=0" for p in ("general", "context", "anneal"))]
PRESETS = ["rexbert-17m", "rexbert-32m", "rexbert-68m", "rexbert-150m", "rexbert-400m"]


@pytest.mark.parametrize("name", PRESETS)
def test_shipped_presets_follow_the_three_phase_plan(name):
    from modeling_rexbert import PRESETS as MODEL_PRESETS

    recipe = load_recipe(name)
    assert recipe.preset == name and name in MODEL_PRESETS
    general, context, anneal = recipe.phase_list
    assert (general.seq_len, general.mask_rate.to_config(), general.lr.schedule) == (1024, 0.3, "wsd")
    assert (context.seq_len, context.lr.schedule) == (8192, "constant")
    assert context.model["global_rope_theta"] == 160000 and context.model["max_position_embeddings"] == 8192
    assert anneal.lr.schedule == "1-sqrt" and anneal.guided_mlm.active
    assert anneal.mixture.end["ecom"] > anneal.mixture.start["ecom"]
    assert recipe.lexicon is not None and recipe.lexicon.domain == ["ecom"]
    assert recipe.select_phase(2)[1] is context and recipe.select_phase("anneal") == (3, anneal)


def test_size_files_only_override_what_differs():
    small, large = read_recipe_dict("rexbert-17m"), read_recipe_dict("rexbert-400m")
    assert small["phases"]["general"]["lr"]["peak"] > large["phases"]["general"]["lr"]["peak"]
    assert small["phases"]["anneal"]["guided_mlm"] == large["phases"]["anneal"]["guided_mlm"]
    assert small["phases"]["general"]["lr"]["schedule"] == "wsd"  # merged from base.yaml


def write(tmp_path, data, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "phases.general.mask_rat=0.2",
            "phases.general: unknown field 'mask_rat' (did you mean 'mask_rate'?)",
        ),
        ("phases.context.lr.shedule=constant", "unknown field 'shedule' (did you mean 'schedule'?)"),
        ("phases.general.lr.schedule=wsdd", "phases.general.lr.schedule: 'wsdd' is not one of"),
        ("phases.anneal.mixture.end.ecomm=0.9", "unknown source 'ecomm' (did you mean 'ecom'?)"),
        ("phases.general.steps=ten", "phases.general.steps: expected int, got str 'ten'"),
        ("phases.general.mask_rate=[0.3, 0.2, 0.1]", "mask_rate must be a number in [0, 1] or [start, end]"),
        ("phases.anneal.seq_len=512", "phases.anneal.seq_len=512 exceeds max_position_embeddings=256"),
        ("lexicon=null", "guided_mlm.weight > 0 needs a top-level 'lexicon' section"),
        ("phases.general.optimizer.name=lion", "'lion' is not one of ('adamw', 'stableadamw')"),
        ("phases.general.mixture.start.ecom=-0.2", "phases.general.mixture.start: weights must be >= 0"),
        ("phases.general.mixture.start={general: 0, ecom: 0}", "the weights sum to 0"),
        ("phases.general.lr.decay_fraction=1.5", "phases.general.lr.decay_fraction must lie in [0, 1]"),
        (
            "phases.general.batch_size_warmup.start=64",
            "batch_size_warmup: start must lie in [1, batch_size=8]",
        ),
        ("preset=rexbert-17", "'rexbert-17' is not a model preset (did you mean 'rexbert-17m'?)"),
        (
            "training_args.repot_to=[tensorboard]",
            "training_args.repot_to: not a TrainingArguments field (did you mean 'report_to'?)",
        ),
        (
            "phases.anneal.training_args.learning_rate=0.1",
            "learning_rate: set by the recipe; use phases.<name>.lr.peak",
        ),
        (
            "training_args.gradient_checkpointing=sometimes",
            "training_args.gradient_checkpointing: expected bool",
        ),
        ("phases.context.eval_steps=-1", "phases.context.eval_steps must be >= 0"),
        ("validation=null", "phases.general.eval_steps needs a top-level 'validation' section"),
        (
            "model.attn_implementation=flash",
            "'flash' is not one of ('sdpa', 'eager', 'flash_attention_2', 'varlen_attn')",
        ),
        (
            "sources.ecom.data_files=x.parquet",
            "sources.ecom: give exactly one of data_files, dataset, sample_corpus",
        ),
    ],
)
def test_bad_fields_are_named(override, message):
    with pytest.raises(ConfigError) as error:
        load_recipe("tiny", [override])
    assert message in str(error.value)


def test_missing_required_field_and_extends(tmp_path):
    data = read_recipe_dict("tiny")
    del data["phases"]["context"]["seq_len"]
    with pytest.raises(ConfigError, match=r"phases.context: missing required field 'seq_len'"):
        load_recipe(write(tmp_path, data))
    child = write(tmp_path, {"extends": "recipe.yaml", "phases": {"context": {"seq_len": 96}}}, "child.yaml")
    assert load_recipe(child).phases["context"].seq_len == 96
    loop = write(tmp_path, {"extends": "loop.yaml"}, "loop.yaml")
    with pytest.raises(ConfigError, match="extends itself"):
        load_recipe(loop)
    with pytest.raises(ConfigError, match="did you mean 'tiny'"):
        load_recipe("tinny")


def test_overrides_parse_yaml_values():
    data = apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]", "a.b=2.5e-4", "d=null"])
    assert data == {"a": {"b": 2.5e-4, "c": [1, 2]}, "d": None}
    with pytest.raises(ConfigError, match="dotted.key=value"):
        apply_overrides({}, ["nonsense"])


def test_model_fields_are_checked_when_the_recipe_loads():
    from modeling_rexbert import rexbert_config
    from trainers.phase import apply_config_changes

    config = rexbert_config("rexbert-17m")
    apply_config_changes(
        config, {"global_rope_theta": 160000, "local_attention": 64, "attn_implementation": "eager"}
    )
    assert config.rope_parameters["full_attention"]["rope_theta"] == 160000 and config.local_attention == 64
    assert config._attn_implementation == "eager"
    with pytest.raises(
        ConfigError, match="model.local_atention: not a RexBertConfig field .*did you mean 'local_attention'"
    ):
        load_recipe("tiny", ["model.local_atention=64"])
    with pytest.raises(ConfigError, match="phases.context.model.hidden_size: .*expected int"):
        load_recipe("tiny", ["phases.context.model.hidden_size=wide"])
    with pytest.raises(ConfigError, match="attn_implementation: 'flash' is not one of"):
        load_recipe("tiny", ["model.attn_implementation=flash"])
    assert load_recipe("tiny", ["model.attn_implementation=eager"]).model["attn_implementation"] == "eager"


def test_stableadamw_is_optional(monkeypatch, tmp_path):
    import sys

    from trainers.arguments import training_arguments

    recipe = load_recipe("rexbert-17m")
    monkeypatch.setitem(sys.modules, "optimi", None)
    with pytest.raises(ConfigError, match="needs the torch-optimi package"):
        training_arguments(recipe, recipe.phases["general"], tmp_path, 10)


def test_recipe_settings_become_transformers_training_arguments(tmp_path):
    pytest.importorskip("optimi")
    from trainers.arguments import training_arguments

    recipe = load_recipe(
        "rexbert-17m",
        [
            "training_args={gradient_checkpointing: true, report_to: [tensorboard]}",
            "phases.anneal.training_args={report_to: []}",
        ],
    )
    args = training_arguments(recipe, recipe.phases["general"], tmp_path, 100)
    assert args.optim == "stable_adamw" and (args.adam_beta1, args.adam_beta2) == (0.9, 0.98)
    assert args.lr_scheduler_type == "warmup_stable_decay" and args.warmup_steps == 100  # min(2000, steps)
    assert args.gradient_checkpointing and args.report_to == ["tensorboard"]
    assert args.ddp_find_unused_parameters is False
    assert training_arguments(recipe, recipe.phases["anneal"], tmp_path, 100).report_to == []


def test_sources_read_files_with_filters_map_style_and_streaming(tmp_path):
    import pandas as pd

    from trainers.sources import RecipeData

    rows = [{"text": f"listing number {i}", "domain": "ecommerce" if i % 2 else "general"} for i in range(20)]
    rows[3]["text"] = ""  # kept by the filter, skipped as empty when read
    pd.DataFrame(rows).to_parquet(tmp_path / "corpus.parquet")
    expected = [r["text"] for r in rows if r["domain"] == "ecommerce" and r["text"]][:6]
    for streaming in (False, True):
        recipe = load_recipe(
            "tiny",
            [
                f"sources.ecom={{data_files: {tmp_path / 'corpus.parquet'}, where: {{domain: [ecommerce]}}, "
                f"max_docs: 7, streaming: {str(streaming).lower()}, sample_corpus: null}}",
                *NO_VALIDATION,
            ],
        )
        assert list(RecipeData(recipe).texts("ecom")) == expected
    from trainers.cli import source_flags

    bad = source_flags(
        load_recipe("tiny", ["sources.ecom.text_column=body", *NO_VALIDATION]),
        [f"ecom={tmp_path / 'corpus.parquet'}"],
    )
    assert bad.sources["ecom"].sample_corpus is None and bad.sources["ecom"].text_column == "body"  # kept
    with pytest.raises(DataError, match="sources.ecom: no column 'body'"):
        RecipeData(bad).dataset("ecom")
    missing = source_flags(load_recipe("tiny", NO_VALIDATION), [f"ecom={tmp_path / 'nothing.parquet'}"])
    with pytest.raises(DataError, match="sources.ecom: could not load"):
        RecipeData(missing).dataset("ecom")


def test_the_recipe_a_pretraining_writes_reads_back_as_the_same_recipe(tmp_path):
    """`recipe.yaml` (the recipe as it ran) is a recipe: reading it gives the same record."""
    import yaml

    from trainers.pretrain import recipe_record

    recipe = load_recipe("rexbert-17m", ["phases.general.mask_rate=[0.3, 0.2]", "seed=5"])
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe_record(recipe), sort_keys=False))
    again = load_recipe(tmp_path / "recipe.yaml")
    assert recipe_record(again) == recipe_record(recipe) and again.phase_list[0].mask_rate(1.0) == 0.2


def test_tokenizer_from_an_olmo_tokenizer_json(shared_data):
    from trainers.recipes import TokenizerSpec
    from trainers.sources import load_tokenizer

    path = shared_data / "tokenizers" / "allenai_gpt-neox-olmo-dolma-v1_5.json"
    tokenizer = load_tokenizer(TokenizerSpec(path=str(path)), data=None)
    assert len(tokenizer) == 50368 and tokenizer.mask_token_id == 50284


def test_every_recipe_owned_hint_names_a_recipe_field():
    """`training_args` fields the recipe owns are refused with the recipe field to set instead: that field
    must exist (a hint once sent `eval_steps` users to a `validation.eval_steps` that did not)."""
    import dataclasses

    from trainers.arguments import RECIPE_OWNED
    from trainers.recipes import PhaseSpec, Recipe

    def resolves(cls, path: list[str]) -> bool:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if path[0] not in fields:
            return False
        hint = typing.get_type_hints(cls)[path[0]]
        return len(path) == 1 or (dataclasses.is_dataclass(hint) and resolves(hint, path[1:]))

    for field_name, hint in RECIPE_OWNED.items():
        target = hint.split(" (")[0]
        if target.startswith("the --") or target.startswith("nothing"):
            continue
        parts = target.split(".")
        owner, path = (PhaseSpec, parts[2:]) if parts[:2] == ["phases", "<name>"] else (Recipe, parts)
        assert resolves(owner, path), f"{field_name}: the hint {hint!r} names no recipe field"
