"""The run config of `rexbert run`: one typed section per stage, validated whole before any stage runs.

A run config is YAML (`rexbert/configs/run_default.yaml` when `--config` is not given); it may start with
`extends: <file>` (a sibling file or the name of a shipped config) and override by section; `--set
section.key=value` overrides any field. `load_run_config` builds the sections with
`typed_config.from_mapping` (unknown keys refused with a suggestion, types checked, relative paths taken
from the working directory); `rexbert.pipeline.load.load_run_config` then builds, from the whole config,
what every stage will be handed, so a typo anywhere, `pretrain.overrides` and `eval.budget` included, stops
the run in one line before the first stage.

The run's `seed` reaches every stage: the sample data, the classifier, MinHash dedup, pretraining and the
evaluation budgets take it unless their own section sets a seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.classifier import TrainSettings
from curation.config import SourceConfig
from eval_suites.common import Budget
from hub_cards import CardOptions, DatasetCardOptions
from rexbert_core.typed_config import (
    ConfigError,
    apply_overrides,
    check_fields,
    deep_merge,
    did_you_mean,
    find_config_file,
    from_mapping,
    path_field,
    read_yaml_mapping,
)

__all__ = ["CONFIG_DIR", "DEFAULT_CONFIG", "RunConfig", "read_run_config", "resolve_config_path"]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "run_default.yaml"


@dataclass
class DataSection:
    """`sample_corpus: true` writes the generated corpus, classifier examples and evaluation sets into the
    run directory and curates them; `sources` adds curation sources (`curation.config.SourceConfig`)."""

    sample_corpus: bool = False
    sources: list[SourceConfig] = field(default_factory=list)


@dataclass
class ClassifierSection:
    """The fastText e-commerce classifier for the curation stage: trained on `examples` (jsonl/parquet with
    text + label; in sample mode the generated examples) or on `shared_pool` (the labelled pool of the
    shared data folder). Label `positive_label` marks e-commerce text."""

    examples: str | list[str] | None = path_field()
    shared_pool: str | None = path_field()
    max_per_source: int = 4000
    positive_label: str = "ecommerce"
    train: TrainSettings = field(default_factory=TrainSettings)


@dataclass
class CurationSection:
    """`settings`: the curation config (`curation.config.CurationConfig`) shared by every corpus, without
    `output_dir` and `sources`, which the run fills in. `corpora`: one pipeline run per corpus, each a
    mapping merged over `settings` with the names of the `sources` it reads (null: all)."""

    corpora: dict[str, dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        if not self.corpora:
            raise ConfigError(f"{where}.corpora: name at least one corpus to curate (e.g. ecom, general)")
        for name, corpus in self.corpora.items():
            if corpus is None:
                self.corpora[name] = {}


@dataclass
class PretrainSection:
    """`recipe`: a recipe file or shipped name (`trainers/recipes/`), merged with `overrides`. `sources`
    maps each recipe source to the curated corpus whose shards it reads. With `tokenize` (the default) the
    `tokenize` stage turns those corpora into token shards once, `tokenize_workers` files at a time, and
    pretraining reads them memory-mapped; false: pretraining tokenizes the corpus text in memory."""

    recipe: str = "tiny"
    sources: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    tokenize: bool = True
    tokenize_workers: int = 1

    def check(self, where: str) -> None:
        if self.tokenize_workers < 1:
            raise ConfigError(f"{where}.tokenize_workers must be at least 1, got {self.tokenize_workers}")


@dataclass
class EvalSection:
    """`suites` to run on the final model; `data` (null in sample mode: the generated sets) maps esci,
    products, glue and ner to paths; `budget` sets `eval_suites.common.Budget` fields for `all` suites
    or one suite."""

    suites: list[str]
    glue_tasks: list[str] | None = None
    data: dict[str, str | list[str]] | None = None
    budget: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, where: str) -> None:
        from eval_suites.data import GLUE_TASKS
        from eval_suites.runner import ALL_DATA_KEYS, SUITES

        for suite in self.suites:
            _check_name(f"{where}.suites", suite, list(SUITES))
        for task in self.glue_tasks or []:
            _check_name(f"{where}.glue_tasks", task, list(GLUE_TASKS))
        if self.data is not None:
            from rexbert_core.typed_config import resolve_path

            for key, value in self.data.items():
                _check_name(f"{where}.data", key, list(ALL_DATA_KEYS))
                paths = value if isinstance(value, list) else [value]
                self.data[key] = [resolve_path(p, only_if_exists=True) for p in paths]
        for key, fields in self.budget.items():
            _check_name(f"{where}.budget", key, ["all", *SUITES])
            self.budget[key] = check_fields(Budget, fields or {}, f"{where}.budget.{key}")


@dataclass
class CardsSection:
    """Publishing choices for the cards: `hub_cards.CardOptions` fields for the model card,
    `hub_cards.DatasetCardOptions` fields for the dataset cards."""

    model: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        self.model = check_fields(CardOptions, self.model, f"{where}.model")
        self.dataset = check_fields(DatasetCardOptions, self.dataset, f"{where}.dataset")


@dataclass
class RunConfig:
    """A whole run; see `rexbert/configs/run_default.yaml` for every field, annotated."""

    data: DataSection
    curation: CurationSection
    eval: EvalSection
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    cards: CardsSection = field(default_factory=CardsSection)
    seed: int = 0
    output: str | None = path_field()
    threads: int | None = None

    def check(self, where: str) -> None:
        if not self.data.sample_corpus and not self.data.sources:
            raise ConfigError(f"{where}.data: set sample_corpus: true or list curation `sources`")
        if not self.data.sample_corpus and not self.eval.data:
            raise ConfigError(
                f"{where}.eval.data: without the sample corpus, name the evaluation files (esci, glue, ner)"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(
                f"{where}.threads must be at least 1 (or null: torch's default), got {self.threads}"
            )

    def corpus_settings(self, corpus: str) -> dict:
        """`curation.settings` merged with `curation.corpora.<corpus>` (its `sources` list included)."""
        return deep_merge(copy.deepcopy(self.curation.settings), copy.deepcopy(self.curation.corpora[corpus]))

    def needs_trained_classifier(self, corpus: str) -> bool:
        classifier = self.corpus_settings(corpus).get("stages", {}).get("classifier", {})
        return classifier.get("enabled", True) is not False and not classifier.get("model")


def _check_name(where: str, value: str, known: list[str]) -> None:
    if value not in known:
        raise ConfigError(f"{where}: unknown {value!r}{did_you_mean(value, known)}; known: {known}")


# ---- reading --------------------------------------------------------------------------------------


def resolve_config_path(path: str | Path) -> Path:
    """A run config file, or the name of a shipped one in `rexbert/configs/`."""
    return find_config_file(path, CONFIG_DIR, "run config")


def _seed_every_stage(data: dict) -> dict:
    """Give every stage the run's seed where its own section sets none (see the module docstring)."""
    seed = data.get("seed", 0)
    data = copy.deepcopy(data)
    for path in (
        ("classifier", "train", "seed"),
        ("curation", "settings", "stages", "minhash_dedup", "seed"),
        ("pretrain", "overrides", "seed"),
        ("eval", "budget", "all", "seed"),
    ):
        node = data
        for key in path[:-1]:
            if node.get(key) is None:
                node[key] = {}
            if not isinstance(node[key], dict):
                break  # a wrong type; the schema names it
            node = node[key]
        else:
            node.setdefault(path[-1], seed)
    return data


def read_run_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config (default: the embedded one), apply `dotted.key=value` overrides and type-check
    every section (the stages' own configs are checked by `rexbert.pipeline.load.load_run_config`)."""
    source = resolve_config_path(path) if path else DEFAULT_CONFIG
    data = apply_overrides(read_yaml_mapping(source, resolve_config_path, "run config"), overrides or [])
    return from_mapping(RunConfig, _seed_every_stage(data), "run config")
