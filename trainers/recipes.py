"""Phase recipes: typed, strictly validated pretraining configurations read from YAML.

A recipe file may start with `extends: <other file>` (relative to itself, or the name of a recipe
shipped in `trainers/recipes/`); mappings are merged recursively over the extended file, anything else
replaces it. `phases` is a mapping from phase name to phase settings, in order, so a size file
overrides one field of one phase by name.

The dataclasses below are the schema, built by `typed_config.from_mapping`: an unknown key is an error
that names it and the closest valid key ("did you mean"), a missing required key is an error that names
it, and values are type-checked, so a misspelt recipe stops before any model is built. Cross-field rules
(the mixture names known sources with non-negative weights, guided MLM has a lexicon, sequence lengths
fit the model, `model` keys are `RexBertConfig` fields) run in the `check` methods when the recipe is
loaded. Relative paths are taken from the working directory.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rexbert_core.typed_config import (
    ConfigError,
    apply_overrides,
    check_value,
    did_you_mean,
    find_config_file,
    from_mapping,
    path_field,
    read_yaml_mapping,
    resolve_path,
    with_changes,
)

from .schedules import DECAY_SHAPES, INTERPOLATIONS, LR_SCHEDULES, ScalarSchedule

__all__ = [
    "RECIPE_DIR",
    "BatchWarmupSpec",
    "GuidedSpec",
    "LRSpec",
    "LexiconSpec",
    "MixtureSpec",
    "OptimizerSpec",
    "PhaseSpec",
    "Recipe",
    "SourceSpec",
    "TokenizerSpec",
    "ValidationSpec",
    "load_recipe",
    "read_recipe_dict",
    "recipe_from_mapping",
    "resolve_recipe_path",
]

RECIPE_DIR = Path(__file__).parent / "recipes"
# RoPE theta per layer type, settable by these names (they update `rope_parameters`); `attn_implementation`
# picks the attention backend. Both are accepted in `model` next to the `RexBertConfig` fields.
ROPE_KEYS = {"global_rope_theta": "full_attention", "local_rope_theta": "sliding_attention"}
EXTRA_MODEL_KEYS = (*ROPE_KEYS, "attn_implementation", "global_attn_every_n_layers")
ATTENTION_BACKENDS = ("sdpa", "eager", "flash_attention_2", "varlen_attn")


@dataclass
class TokenizerSpec:
    """Where the tokenizer comes from: exactly one of `path` (a tokenizer directory, Hub id or an
    OLMo-style `tokenizer.json`) or `train_vocab_size` (train a small BPE on the sources, offline demos)."""

    path: str | None = path_field(hub_id=True)
    train_vocab_size: int | None = None
    train_max_docs: int = 5000

    def check(self, where: str) -> None:
        if (self.path is None) == (self.train_vocab_size is None):
            raise ConfigError(f"{where}: give exactly one of 'path' and 'train_vocab_size'")


@dataclass
class SourceSpec:
    """A named text source. Exactly one of `data_files` (local parquet/json/jsonl/csv/txt files or
    globs), `dataset` (a `datasets` builder or Hub id), `sample_corpus` (sources of the project's
    generated sample corpus, e.g. [listing, review]) or `shards` (a directory `rexbert tokenize` wrote:
    read memory-mapped, never tokenized again; `shards_source` names the source in it, default this
    source's name)."""

    data_files: str | list[str] | None = path_field()
    shards: str | None = path_field()
    shards_source: str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    sample_corpus: list[str] | None = None
    split: str = "train"
    text_column: str = "text"
    where: dict[str, list] | None = None
    max_docs: int | None = None
    streaming: bool = False
    shuffle: bool = True

    # what the source reads (exactly one), and the fields that select within it
    KINDS = ("data_files", "dataset", "sample_corpus", "shards")
    SELECTORS = ("dataset_config", "shards_source", "where")

    def reading(self, where: str, /, **source: Any) -> SourceSpec:
        """This source reading one thing (`data_files=...`, `shards=...`, ...; one of `KINDS`) and nothing
        else: the other kinds and their selectors cleared, every other setting kept. Token shards are
        read memory-mapped, never streamed."""
        (kind, _), *more = source.items()
        if more or kind not in self.KINDS:
            raise ConfigError(f"{where}: a source reads exactly one of {self.KINDS}, got {sorted(source)}")
        changes = dict.fromkeys((*self.KINDS, *self.SELECTORS))
        changes.update({"streaming": False} if kind == "shards" else {}, **source)
        return with_changes(self, where, **changes)

    def check(self, where: str) -> None:
        given = [k for k in self.KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ConfigError(f"{where}: give exactly one of {', '.join(self.KINDS)} (got {given or 'none'})")
        if self.shards is not None and (self.streaming or self.where):
            raise ConfigError(f"{where}: shards are read memory-mapped; 'streaming' and 'where' do not apply")


@dataclass
class LexiconSpec:
    """The Guided-MLM saliency lexicon: loaded from `path`, or built from the `domain` sources
    contrasted with the `general` ones (`max_docs` documents of each)."""

    domain: list[str] = field(default_factory=list)
    general: list[str] = field(default_factory=list)
    path: str | None = path_field()
    max_docs: int = 20000
    smoothing: float = 1.0
    min_count: int = 5
    max_tokens: int | None = None
    words_only: bool = True

    def check(self, where: str) -> None:
        if self.path is None and not (self.domain and self.general):
            raise ConfigError(f"{where}: give 'path', or both 'domain' and 'general' source lists")


@dataclass
class LRSpec:
    """Learning-rate schedule (see `trainers.schedules`)."""

    schedule: Literal[LR_SCHEDULES]
    peak: float
    warmup_steps: int = 0
    decay_fraction: float = 0.1
    decay_shape: Literal[DECAY_SHAPES] = "1-sqrt"
    min_ratio: float = 0.0

    def check(self, where: str) -> None:
        if self.peak <= 0:
            raise ConfigError(f"{where}.peak must be positive, got {self.peak}")
        if self.warmup_steps < 0:
            raise ConfigError(f"{where}.warmup_steps must be >= 0, got {self.warmup_steps}")
        for name in ("decay_fraction", "min_ratio"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{where}.{name} must lie in [0, 1], got {getattr(self, name)}")


@dataclass
class OptimizerSpec:
    name: Literal["adamw", "stableadamw"] = "adamw"
    weight_decay: float = 1e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-6
    max_grad_norm: float = 1.0

    def check(self, where: str) -> None:
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"{where}.betas must be two numbers in [0, 1), got {self.betas}")


@dataclass
class MixtureSpec:
    """Source weights at the start and end of the phase (end defaults to start: constant)."""

    start: dict[str, float]
    end: dict[str, float] | None = None
    shape: Literal[INTERPOLATIONS] = "linear"

    def check(self, where: str) -> None:
        for key, weights in (("start", self.start), ("end", self.end)):
            if weights is None:
                continue
            negative = {name: w for name, w in weights.items() if w < 0}
            if negative:
                raise ConfigError(f"{where}.{key}: weights must be >= 0, got {negative}")
            if sum(weights.values()) <= 0:
                raise ConfigError(f"{where}.{key}: the weights sum to 0; give at least one positive weight")


@dataclass
class GuidedSpec:
    """Guided MLM: `weight` 0 is uniform masking, 1 fully guided (a number or [start, end])."""

    weight: ScalarSchedule = field(default_factory=lambda: ScalarSchedule.constant(0.0))
    temperature: float = 1.0
    whole_word: bool = False

    def check(self, where: str) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"{where}.temperature must be positive, got {self.temperature}")

    @property
    def active(self) -> bool:
        return self.weight.active


@dataclass
class ValidationSpec:
    """Held-out documents per source, never trained on in any phase: `documents_per_source` of each source
    (a seeded draw) are set aside before packing; phases with `eval_steps` report the MLM loss and
    masked-token accuracy on them per source, with uniform masking at the phase's starting rate."""

    documents_per_source: int = 64
    batch_size: int = 16

    def check(self, where: str) -> None:
        if self.documents_per_source < 1 or self.batch_size < 1:
            raise ConfigError(f"{where}: documents_per_source and batch_size must be positive")


@dataclass
class BatchWarmupSpec:
    """Batch-size warmup: `start` rows per batch rising linearly to the phase's batch size."""

    start: int
    steps: int


@dataclass
class PhaseSpec:
    """One training phase. `init_from`: `previous` (the last phase's model; for the first phase the
    recipe's `init_from`, or a fresh model), `scratch`, or a checkpoint directory / Hub id."""

    steps: int
    seq_len: int
    batch_size: int
    lr: LRSpec
    mixture: MixtureSpec
    grad_accum: int = 1
    mask_rate: ScalarSchedule = field(default_factory=lambda: ScalarSchedule.constant(0.3))  # or [start, end]
    guided_mlm: GuidedSpec = field(default_factory=GuidedSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    batch_size_warmup: BatchWarmupSpec | None = None
    model: dict[str, Any] = field(default_factory=dict)
    init_from: str = "previous"
    on_exhausted: Literal["recycle", "stop"] = "recycle"
    logging_steps: int = 10
    save_steps: int = 0
    eval_steps: int = 0  # validation every this many steps (0: none; needs a top-level `validation`)
    training_args: dict[str, Any] = field(
        default_factory=dict
    )  # TrainingArguments fields (trainers.arguments)
    name: str = field(default="", metadata={"derived": True})  # the key under `phases`

    def check(self, where: str) -> None:
        from .arguments import check_training_args

        check_training_args(f"{where}.training_args", self.training_args)
        if self.eval_steps < 0:
            raise ConfigError(f"{where}.eval_steps must be >= 0 (0: no validation), got {self.eval_steps}")
        for key in ("steps", "seq_len", "batch_size", "grad_accum", "logging_steps"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{where}.{key} must be positive, got {getattr(self, key)}")
        if self.save_steps < 0:
            raise ConfigError(f"{where}.save_steps must be >= 0 (0: no checkpoints), got {self.save_steps}")
        if self.lr.warmup_steps > self.steps:
            raise ConfigError(f"{where}.lr.warmup_steps={self.lr.warmup_steps} exceeds steps={self.steps}")
        warmup = self.batch_size_warmup
        if warmup is not None and not (0 < warmup.start <= self.batch_size and warmup.steps >= 0):
            raise ConfigError(
                f"{where}.batch_size_warmup: start must lie in [1, batch_size={self.batch_size}] and steps "
                f"be >= 0, got start={warmup.start}, steps={warmup.steps}"
            )
        if self.init_from not in ("previous", "scratch"):
            self.init_from = resolve_path(self.init_from, only_if_exists=True)


@dataclass
class Recipe:
    """A full pretraining recipe: model preset, tokenizer, sources, lexicon and ordered phases."""

    preset: str
    tokenizer: TokenizerSpec
    sources: dict[str, SourceSpec]
    phases: dict[str, PhaseSpec]
    model: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = path_field(hub_id=True)
    lexicon: LexiconSpec | None = None
    validation: ValidationSpec | None = None
    training_args: dict[str, Any] = field(default_factory=dict)  # for every phase (trainers.arguments)
    seed: int = 42
    path: str = field(default="", metadata={"derived": True})  # the file it was read from

    @property
    def phase_list(self) -> list[PhaseSpec]:
        return list(self.phases.values())

    def select_phase(self, which: str | int) -> tuple[int, PhaseSpec]:
        """(1-based number, spec) of a phase given by number or name."""
        names = list(self.phases)
        if isinstance(which, int) or str(which).isdigit():
            number = int(which)
            if not 1 <= number <= len(names):
                raise ConfigError(
                    f"phase {number} does not exist; the recipe has phases 1..{len(names)}: {names}"
                )
            return number, self.phases[names[number - 1]]
        if which not in self.phases:
            raise ConfigError(f"no phase named {which!r}{did_you_mean(which, names)}; phases: {names}")
        return names.index(which) + 1, self.phases[which]

    def check(self, where: str) -> None:
        """Cross-field checks across sections; raises `ConfigError` naming the field."""
        from modeling_rexbert import PRESETS

        if self.preset not in PRESETS:
            raise ConfigError(
                f"{where}.preset: {self.preset!r} is not a model preset{did_you_mean(self.preset, list(PRESETS))}; "
                f"presets: {sorted(PRESETS)}"
            )
        if not self.phases:
            raise ConfigError(f"{where}.phases: the recipe has no phase")
        from .arguments import check_training_args

        check_training_args(f"{where}.training_args", self.training_args)
        check_model_fields(f"{where}.model", self.model)
        model_changes = dict(self.model)  # phase `model` changes carry over to later phases
        for name, phase in self.phases.items():
            phase.name = name
            check_model_fields(f"{where}.phases.{name}.model", phase.model)
            model_changes.update(phase.model)
            max_positions = model_changes.get("max_position_embeddings")
            if max_positions is not None and phase.seq_len > max_positions:
                raise ConfigError(
                    f"{where}.phases.{name}.seq_len={phase.seq_len} exceeds max_position_embeddings={max_positions}"
                )
            for weights in (phase.mixture.start, phase.mixture.end or {}):
                for source in weights:
                    self._check_source(f"{where}.phases.{name}.mixture", source)
            if phase.eval_steps and self.validation is None:
                raise ConfigError(f"{where}.phases.{name}.eval_steps needs a top-level 'validation' section")
            if phase.guided_mlm.active and self.lexicon is None:
                raise ConfigError(
                    f"{where}.phases.{name}.guided_mlm.weight > 0 needs a top-level 'lexicon' section"
                )
        if self.lexicon is not None:
            for role in ("domain", "general"):
                for source in getattr(self.lexicon, role):
                    self._check_source(f"{where}.lexicon.{role}", source)

    def _check_source(self, where: str, source: str) -> None:
        if source not in self.sources:
            raise ConfigError(
                f"{where}: unknown source {source!r}{did_you_mean(source, list(self.sources))}; "
                f"sources: {sorted(self.sources)}"
            )


def check_model_fields(where: str, changes: dict[str, Any]) -> None:
    """Every key a `RexBertConfig` field (or a RoPE theta / attention backend), every value of the field's
    annotated type (checked by `check_value` against `RexBertConfig`'s own annotations)."""
    hints = model_field_types()
    for key in changes:
        if key not in hints and key not in EXTRA_MODEL_KEYS:
            raise ConfigError(
                f"{where}.{key}: not a RexBertConfig field{did_you_mean(key, [*hints, *EXTRA_MODEL_KEYS])}"
            )
    backend = changes.get("attn_implementation")
    if backend is not None and backend not in ATTENTION_BACKENDS:
        raise ConfigError(
            f"{where}.attn_implementation: {backend!r} is not one of {ATTENTION_BACKENDS}"
            f"{did_you_mean(str(backend), list(ATTENTION_BACKENDS))}"
        )
    for key, value in changes.items():
        if key in hints:
            changes[key] = check_value(hints[key], value, f"{where}.{key}")


@functools.cache
def model_field_types() -> dict[str, Any]:
    """`RexBertConfig` field -> its annotation. transformers annotates `dtype` with `torch.dtype` under
    TYPE_CHECKING only, so `torch` is handed to `get_type_hints`."""
    import dataclasses

    import torch

    from modeling_rexbert import RexBertConfig

    hints = typing.get_type_hints(RexBertConfig, localns={"torch": torch})
    return {f.name: hints[f.name] for f in dataclasses.fields(RexBertConfig)}


# ---- loading ------------------------------------------------------------------------------------


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file path, or the name of a shipped recipe (`rexbert-17m`, `tiny`, ...)."""
    return find_config_file(name_or_path, RECIPE_DIR, "recipe")


def read_recipe_dict(path: str | Path) -> dict:
    """The merged mapping of a recipe file (or shipped recipe name) and the files it extends."""
    return read_yaml_mapping(path, resolve_recipe_path, "recipe")


def recipe_from_mapping(data: dict, where: str = "recipe", path: str = "") -> Recipe:
    """Type-check and validate a recipe mapping (for configs assembled in code, e.g. by `rexbert run`)."""
    recipe = from_mapping(Recipe, data, where)
    recipe.path = path
    return recipe


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, merge, override, type-check and validate a recipe."""
    resolved = resolve_recipe_path(path)
    data = apply_overrides(read_recipe_dict(resolved), overrides or [])
    return recipe_from_mapping(data, where=resolved.name, path=str(resolved))
