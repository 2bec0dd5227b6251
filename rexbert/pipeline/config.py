"""The run config of `rexbert run`: one typed section per stage, read and checked whole before any stage runs.

A run config is YAML (`rexbert/configs/run_default.yaml` when `--config` is not given); it may start with
`extends: <file>` (a sibling file or the name of a shipped config) and override by section. Sections are
built with `typed_config.from_mapping` (unknown keys refused with a suggestion, types checked, relative paths
taken from the working directory). `rexbert.pipeline.plan` then builds, once, the typed config every stage
hands to its library, so a mistake anywhere (`pretrain.overrides`, `eval.budget`, a curation setting) stops
the run in one line before the first stage.

Precedence, stated once (lowest first):

- values: the file a config `extends:`, the config file, `--set section.key=value`, then the command's own
  flags (`--output` over the config's `output`);
- seeds: a library's default (a recipe file's `seed:` included), the run's `seed`, then a section's own
  seed (`classifier.train.seed`, `curation.settings|corpora.<name>.stages.minhash_dedup.seed`,
  `pretrain.overrides.seed`, `eval.budget.<all|suite>.seed`, `finetune.settings.<task>.train.seed`). The
  seed every stage got, and from where, is written into `run_config.yaml` under `resolved`.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.classifier import TrainSettings
from curation.config import CurationConfig, SourceConfig
from eval_suites.common import Budget
from hub_cards import CardOptions, DatasetCardOptions
from rexbert_core.typed_config import (
    ConfigError,
    apply_overrides,
    check_choice,
    check_fields,
    deep_merge,
    explicit_fields,
    find_config_file,
    from_mapping,
    path_field,
    read_yaml_mapping,
    resolve_path,
)

__all__ = ["CONFIG_DIR", "DEFAULT_CONFIG", "RunConfig", "Seed", "read_run_config", "resolve_config_path"]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "run_default.yaml"


@dataclass(frozen=True)
class Seed:
    """A stage's seed and the field it came from (`seed`: the run's)."""

    value: int
    source: str = "seed"

    def __str__(self) -> str:
        return f"{self.value} (from {self.source})"


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
        self.corpora = {name: corpus or {} for name, corpus in self.corpora.items()}
        for part, settings in [
            ("settings", self.settings),
            *((f"corpora.{n}", c) for n, c in self.corpora.items()),
        ]:
            filled = sorted(
                {"output_dir", "sources"} & set(settings) - ({"sources"} if part != "settings" else set())
            )
            if filled:
                raise ConfigError(f"{where}.{part}.{filled[0]}: the run fills it in; remove it here")
            # what is given is checked where it is written (the whole config is built per corpus by the plan)
            check_fields(
                CurationConfig, {k: v for k, v in settings.items() if k != "sources"}, f"{where}.{part}"
            )


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
    """`suites` to run on the final model; `data` (null in sample mode: the generated sets) maps the suites'
    data keys (esci, products, glue, ner) to paths; `budget` sets `eval_suites.common.Budget` fields for
    `all` suites or one suite; `options` sets a suite's own options (`glue: {tasks: [sst2]}`)."""

    suites: list[str]
    data: dict[str, str | list[str]] | None = None
    budget: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, where: str) -> None:
        from eval_suites.runner import ALL_DATA_KEYS, SUITES, suite_options

        for suite in self.suites:
            check_choice(f"{where}.suites", suite, tuple(SUITES))
        for key in self.data or {}:
            check_choice(f"{where}.data", key, ALL_DATA_KEYS)
        if self.data is not None:  # one path or several, each taken from the working directory
            listed = {key: value if isinstance(value, list) else [value] for key, value in self.data.items()}
            self.data = {
                key: [resolve_path(p, only_if_exists=True) for p in paths] for key, paths in listed.items()
            }
        for key in self.budget:
            check_choice(f"{where}.budget", key, ("all", *SUITES))
        self.budget = {
            key: check_fields(Budget, fields or {}, f"{where}.budget.{key}")
            for key, fields in self.budget.items()
        }
        for suite, settings in self.options.items():
            check_choice(f"{where}.options", suite, tuple(SUITES))
            suite_options(suite, settings, f"{where}.options.{suite}")  # checked now, built by the plan


@dataclass
class FinetuneSection:
    """`rexbert finetune` on the run's model (`eval_suites.tasks`): `tasks` in order (a rerank after a
    retrieval also reranks the bi-encoder's results), the `preset`, each task's own fields in `settings`
    (`{retrieval: {train: {epochs: 2}}}`), and `data` per task (null in sample mode: the generated ESCI
    pair, and the NER set for `extract`)."""

    tasks: list[str] = field(default_factory=lambda: ["retrieval", "rerank"])
    preset: str = "default"
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, str | list[str]] | None = None

    def check(self, where: str) -> None:
        from eval_suites.tasks.config import TASKS, task_config

        for task in [*self.tasks, *self.settings]:
            check_choice(f"{where}.tasks", task, tuple(TASKS))
        for task in self.tasks:  # every field checked now, built again by the plan with the run's seed
            task_config(task, self.preset, settings=self.settings.get(task), where=f"{where}.settings.{task}")
        if self.data is not None:
            self.data = {
                task: [
                    resolve_path(p, only_if_exists=True)
                    for p in ([paths] if isinstance(paths, str) else paths)
                ]
                for task, paths in self.data.items()
            }


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
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    cards: CardsSection = field(default_factory=CardsSection)
    seed: int = 0
    output: str | None = path_field()
    threads: int | None = None

    def check(self, where: str) -> None:
        if not self.data.sample_corpus and not self.data.sources:
            raise ConfigError(f"{where}.data: set sample_corpus: true or list curation `sources`")
        missing = [t for t in self.finetune.tasks if t not in (self.finetune.data or {})]
        if not self.data.sample_corpus and missing:
            raise ConfigError(f"{where}.finetune.data: without the sample corpus, name the data of {missing}")
        if not self.data.sample_corpus and not self.eval.data:
            raise ConfigError(
                f"{where}.eval.data: without the sample corpus, name the evaluation files (esci, glue, ner)"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(
                f"{where}.threads must be at least 1 (or null: torch's default), got {self.threads}"
            )

    def corpus_settings(self, corpus: str) -> dict:
        """`curation.settings` merged with `curation.corpora.<corpus>` (its `sources` list included): the
        corpus's curation config as the user wrote it."""
        return deep_merge(copy.deepcopy(self.curation.settings), copy.deepcopy(self.curation.corpora[corpus]))

    @functools.cached_property
    def seeds(self) -> dict[str, Seed]:
        """The seed of every stage that draws random numbers, by the precedence in the module docstring."""
        from trainers.recipes import read_recipe_dict

        run = Seed(self.seed)

        def own(value: Any, source: str) -> Seed:
            return run if value is None else Seed(int(value), source)

        seeds = {"data": run}
        train = self.classifier.train
        seeds["classifier"] = own(
            train.seed if "seed" in explicit_fields(train) else None, "classifier.train.seed"
        )
        for corpus in self.curation.corpora:
            minhash = self.corpus_settings(corpus).get("stages", {}).get("minhash_dedup") or {}
            source = f"curation.(settings|corpora.{corpus}).stages.minhash_dedup.seed"
            seeds[f"curate.{corpus}"] = own(minhash.get("seed"), source)
        seeds["pretrain"] = own(self.pretrain.overrides.get("seed"), "pretrain.overrides.seed")
        recipe_seed = read_recipe_dict(self.pretrain.recipe).get("seed")
        if seeds["pretrain"] is run and recipe_seed not in (None, self.seed):
            seeds["pretrain"] = Seed(self.seed, f"seed, over the recipe file's {recipe_seed}")
        for task in self.finetune.tasks:
            own_seed = self.finetune.settings.get(task, {}).get("train", {}).get("seed")
            seeds[f"finetune.{task}"] = own(own_seed, f"finetune.settings.{task}.train.seed")
        for suite in self.eval.suites:
            budget = {**self.eval.budget.get("all", {}), **self.eval.budget.get(suite, {})}
            source = f"eval.budget.{suite if 'seed' in self.eval.budget.get(suite, {}) else 'all'}.seed"
            seeds[f"eval.{suite}"] = own(budget.get("seed"), source)
        return seeds

    def needs_trained_classifier(self, corpus: str) -> bool:
        """The corpus runs the classifier stage without naming a model: the run trains one for it."""
        classifier = self.corpus_settings(corpus).get("stages", {}).get("classifier", {})
        return classifier.get("enabled", True) is not False and not classifier.get("model")


# ---- reading --------------------------------------------------------------------------------------


def resolve_config_path(path: str | Path) -> Path:
    """A run config file, or the name of a shipped one in `rexbert/configs/`."""
    return find_config_file(path, CONFIG_DIR, "run config")


def read_run_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config (default: the embedded one), apply `dotted.key=value` overrides and type-check
    every section (the stages' own configs are built from it by `rexbert.pipeline.plan`)."""
    source = resolve_config_path(path) if path else DEFAULT_CONFIG
    data = apply_overrides(read_yaml_mapping(source, resolve_config_path, "run config"), overrides or [])
    return from_mapping(RunConfig, data, "run config")
