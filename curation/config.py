"""The curation run configuration: sources, stage settings, executor and output, read from a YAML file.

Every stage has an ``enabled`` flag so any of them can be skipped; each stage's settings and defaults live
in its step file (`curation/steps/`) and are listed here once, in `StagesConfig`. The dataclasses are the
schema, built by `typed_config.from_mapping`: an unknown key is an error naming it with the closest valid
key, so a typo never silently turns a stage into its defaults, and every value is type-checked when the
file is loaded. Relative paths are taken from the working directory, as in every project config. See
`curation/configs/` for annotated examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from curation.steps.dedup import ExactDedupConfig, MinhashConfig
from curation.steps.domain_preselect import DomainPreselectConfig
from curation.steps.ecom_classifier import ClassifierConfig
from curation.steps.language import LanguageConfig
from curation.steps.pii import PIIConfig
from curation.steps.quality import QualityConfig
from curation.steps.stage import FilterStage
from rexbert_core.typed_config import ConfigError, from_mapping, path_field, read_yaml_mapping, resolve_path

__all__ = [
    "ClassifierConfig",
    "CurationConfig",
    "DomainPreselectConfig",
    "ExactDedupConfig",
    "ExecutorConfig",
    "InputLimits",
    "LanguageConfig",
    "MinhashConfig",
    "OutputConfig",
    "PIIConfig",
    "QualityConfig",
    "SourceConfig",
    "StagesConfig",
    "config_from_dict",
    "load_config",
]

SOURCE_FORMATS = ("jsonl", "parquet", "finefineweb", "datasets")


@dataclass
class SourceConfig:
    """One input source.

    ``format``: ``jsonl`` (.jsonl/.jsonl.gz/.zst lines), ``parquet``, ``finefineweb`` (jsonl records whose
    domain label is the ``domain`` field or, when absent, the name of the folder holding the file, as in
    FineFineWeb's ``<domain>/<domain>_000000.jsonl`` layout) or ``datasets`` (anything
    `datasets.load_dataset(dataset, **dataset_options)` reads, e.g. ``dataset: parquet`` with
    ``data_files``). ``domain`` is the label given to records without one.
    """

    name: str
    path: str = path_field("")
    format: Literal[SOURCE_FORMATS] = "jsonl"
    glob: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    domain_key: str | None = "domain"
    domain: str = "unknown"
    dataset: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        if self.format == "datasets":
            if not self.dataset:
                raise ConfigError(f"{where}: format datasets needs `dataset` (a builder name or Hub id)")
            files = self.dataset_options.get("data_files")
            if isinstance(files, (str, list)):
                resolved = [resolve_path(f) for f in ([files] if isinstance(files, str) else files)]
                self.dataset_options["data_files"] = resolved[0] if isinstance(files, str) else resolved
        elif not self.path:
            raise ConfigError(f"{where}: `path` is required for format {self.format}")


@dataclass
class InputLimits:
    """Documents outside these sizes (in characters) are rejected as bad input, not filtered."""

    min_chars: int = 1
    max_chars: int = 1_000_000

    def check(self, where: str) -> None:
        if not 0 <= self.min_chars <= self.max_chars:
            raise ConfigError(
                f"{where}: need 0 <= min_chars <= max_chars, got {self.min_chars}, {self.max_chars}"
            )


@dataclass
class StagesConfig:
    """The stages, one field each, in pipeline order: the per-document filters (each a `FilterStage` whose
    settings and defaults live in its step file under `curation/steps/`), then the two deduplications.
    Language id comes after the classifier because lid.176 costs several times more per document and the
    classifier already drops most general web text. A new filter is its step file plus a field here."""

    domain_preselect: DomainPreselectConfig = field(default_factory=DomainPreselectConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    pii: PIIConfig = field(default_factory=PIIConfig)
    exact_dedup: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    minhash_dedup: MinhashConfig = field(default_factory=MinhashConfig)

    def filters(self) -> list[FilterStage]:
        """The per-document stages, in pipeline order."""
        stages = (getattr(self, f.name) for f in fields(self))
        return [stage for stage in stages if isinstance(stage, FilterStage)]


@dataclass
class OutputConfig:
    """Corpus shards: ``<output_dir>/corpus/*.parquet`` (or ``.jsonl.gz`` with ``format: jsonl``)."""

    format: Literal["parquet", "jsonl"] = "parquet"
    max_file_size_mb: int = 512
    write_removed: bool = True


@dataclass
class ExecutorConfig:
    """Which datatrove executor runs the step lists: ``local`` (`LocalPipelineExecutor`, processes on this
    machine), ``slurm`` (`SlurmPipelineExecutor`, one job array per step list, each depending on the one
    before; ``options`` are its keyword arguments, e.g. ``partition``, ``time``, ``cpus_per_task``,
    ``venv_path``) or ``ray`` (`RayPipelineExecutor`, on the Ray cluster `ray.init()` connects to; needs the
    ``ray`` extra). The corpus report is written by a last one-task job once every step has finished."""

    kind: Literal["local", "slurm", "ray"] = "local"
    options: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str) -> None:
        if self.kind == "slurm":
            missing = [k for k in ("partition", "time") if k not in self.options]
            if missing:
                raise ConfigError(f"{where}.options: the slurm executor needs {missing}")


@dataclass
class CurationConfig:
    """A whole curation run. ``tasks`` shards the input files; ``workers`` run tasks in parallel."""

    output_dir: str = path_field()
    sources: list[SourceConfig] = field(default_factory=list)
    tasks: int = 1
    workers: int = 1
    token_counter: str = "words"
    progress: bool = True
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    limits: InputLimits = field(default_factory=InputLimits)
    stages: StagesConfig = field(default_factory=StagesConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def check(self, where: str) -> None:
        if not self.output_dir:
            raise ConfigError(f"{where}: missing required field 'output_dir'")
        if not self.sources:
            raise ConfigError(f"{where}.sources: list at least one input source")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.sources: source names must be unique, got {names}")
        for key in ("tasks", "workers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be at least 1, got {getattr(self, key)}")
        if self.stages.classifier.enabled and not self.stages.classifier.model:
            raise ConfigError(
                f"{where}.stages.classifier is enabled but has no `model` (a fastText .bin from "
                "`rexbert curate train-classifier`); set it or set enabled: false"
            )
        if self.token_counter != "words":
            self.token_counter = resolve_path(self.token_counter)


def config_from_dict(data: dict, where: str = "config") -> CurationConfig:
    """Build and check a `CurationConfig` from a plain mapping; relative paths are taken from the working
    directory."""
    return from_mapping(CurationConfig, data, where)


def load_config(path: str | Path) -> CurationConfig:
    """Read a YAML curation config (it may `extends:` another file); see the module docstring."""

    def find(name: str | Path) -> Path:
        candidate = Path(name)
        if not candidate.is_file():
            raise ConfigError(f"curation config not found: {candidate}")
        return candidate

    return config_from_dict(read_yaml_mapping(path, find, "curation config"), where=str(path))
