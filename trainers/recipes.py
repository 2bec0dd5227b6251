"""Phase recipes: typed, strictly validated pretraining configurations read from YAML.

A recipe file may start with `extends: <other file>` (relative to itself, or the name of a
recipe shipped in `trainers/recipes/`); mappings are merged recursively over the extended file,
anything else replaces it. `phases` is a mapping from phase name to phase settings, in order, so
a size file overrides one field of one phase by name.

Every mapping is checked against its dataclass: an unknown key is an error that names it and the
closest valid key ("did you mean"), a missing required key is an error that names it, and values
are type-checked, so a misspelt recipe stops before any model is built. Cross-field rules (the
mixture names known sources, guided MLM has a lexicon, sequence lengths fit the model) are checked
by `Recipe.validate`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any, Union

import yaml

from .schedules import DECAY_SHAPES, INTERPOLATIONS, LR_SCHEDULES

RECIPE_DIR = Path(__file__).parent / "recipes"
OPTIMIZERS = ("adamw", "stableadamw")


class RecipeError(ValueError):
    """A recipe that cannot be run as written; the message names the offending field."""


@dataclass
class TokenizerSpec:
    """Where the tokenizer comes from: exactly one of `path` (a tokenizer directory, Hub id or an
    OLMo-style `tokenizer.json`) or `train_vocab_size` (train a small BPE on the sources, offline demos)."""

    path: str | None = None
    train_vocab_size: int | None = None
    train_max_docs: int = 5000


@dataclass
class SourceSpec:
    """A named text source. Exactly one of `data_files` (local parquet/json/jsonl/csv/txt files or
    globs, relative to the working directory), `dataset` (a `datasets` builder or Hub id) or
    `sample_corpus` (sources of the project's embedded sample corpus, e.g. [listing, review])."""

    data_files: str | list[str] | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    sample_corpus: list[str] | None = None
    split: str = "train"
    text_column: str = "text"
    where: dict[str, list] | None = None
    max_docs: int | None = None
    streaming: bool = False
    shuffle: bool = True


@dataclass
class LexiconSpec:
    """The Guided-MLM saliency lexicon: loaded from `path`, or built from the `domain` sources
    contrasted with the `general` ones (`max_docs` documents of each)."""

    domain: list[str] = field(default_factory=list)
    general: list[str] = field(default_factory=list)
    path: str | None = None
    max_docs: int = 20000
    smoothing: float = 1.0
    min_count: int = 5
    max_tokens: int | None = None
    words_only: bool = True


@dataclass
class LRSpec:
    """Learning-rate schedule (see `trainers.schedules`)."""

    schedule: str
    peak: float
    warmup_steps: int = 0
    decay_fraction: float = 0.1
    decay_shape: str = "1-sqrt"
    min_ratio: float = 0.0


@dataclass
class OptimizerSpec:
    name: str = "adamw"
    weight_decay: float = 1e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-6
    max_grad_norm: float = 1.0


@dataclass
class MixtureSpec:
    """Source weights at the start and end of the phase (end defaults to start: constant)."""

    start: dict[str, float]
    end: dict[str, float] | None = None
    shape: str = "linear"


@dataclass
class GuidedSpec:
    """Guided MLM: `weight` 0 is uniform masking, 1 fully guided (a number or [start, end])."""

    weight: float | list[float] = 0.0
    temperature: float = 1.0
    whole_word: bool = False


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
    mask_rate: float | list[float] = 0.3
    guided_mlm: GuidedSpec = field(default_factory=GuidedSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    batch_size_warmup: BatchWarmupSpec | None = None
    model: dict[str, Any] = field(default_factory=dict)
    init_from: str = "previous"
    on_exhausted: str = "recycle"
    logging_steps: int = 10
    save_steps: int = 0
    name: str = field(default="", metadata={"derived": True})  # the key under `phases`


@dataclass
class Recipe:
    """A full pretraining recipe: model preset, tokenizer, sources, lexicon and ordered phases."""

    preset: str
    tokenizer: TokenizerSpec
    sources: dict[str, SourceSpec]
    phases: dict[str, PhaseSpec]
    model: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    lexicon: LexiconSpec | None = None
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
                raise RecipeError(
                    f"phase {number} does not exist; the recipe has phases 1..{len(names)}: {names}"
                )
            return number, self.phases[names[number - 1]]
        if which not in self.phases:
            raise RecipeError(f"no phase named {which!r}{did_you_mean(which, names)}; phases: {names}")
        return names.index(which) + 1, self.phases[which]

    def validate(self) -> Recipe:
        """Cross-field checks; raises `RecipeError` naming the field."""
        if self.tokenizer.path is None and self.tokenizer.train_vocab_size is None:
            raise RecipeError("tokenizer: give either 'path' or 'train_vocab_size'")
        if self.tokenizer.path is not None and self.tokenizer.train_vocab_size is not None:
            raise RecipeError("tokenizer: give only one of 'path' and 'train_vocab_size'")
        for name, source in self.sources.items():
            given = [k for k in ("data_files", "dataset", "sample_corpus") if getattr(source, k) is not None]
            if len(given) != 1:
                raise RecipeError(
                    f"sources.{name}: give exactly one of data_files, dataset, sample_corpus "
                    f"(got {given or 'none'})"
                )
        if not self.phases:
            raise RecipeError("phases: the recipe has no phase")
        model_changes = dict(self.model)  # phase `model` changes carry over to later phases
        for name, phase in self.phases.items():
            model_changes.update(phase.model)
            self._validate_phase(f"phases.{name}", phase, model_changes.get("max_position_embeddings"))
        if self.lexicon is not None:
            for role in ("domain", "general"):
                for source in getattr(self.lexicon, role):
                    self._check_source(f"lexicon.{role}", source)
            if self.lexicon.path is None and not (self.lexicon.domain and self.lexicon.general):
                raise RecipeError("lexicon: give 'path', or both 'domain' and 'general' source lists")
        return self

    def _validate_phase(self, where: str, phase: PhaseSpec, max_positions: int | None) -> None:
        for key in ("steps", "seq_len", "batch_size", "grad_accum", "logging_steps"):
            if getattr(phase, key) <= 0:
                raise RecipeError(f"{where}.{key} must be positive, got {getattr(phase, key)}")
        _check_choice(f"{where}.lr.schedule", phase.lr.schedule, LR_SCHEDULES)
        _check_choice(f"{where}.lr.decay_shape", phase.lr.decay_shape, DECAY_SHAPES)
        _check_choice(f"{where}.mixture.shape", phase.mixture.shape, INTERPOLATIONS)
        _check_choice(f"{where}.optimizer.name", phase.optimizer.name, OPTIMIZERS)
        _check_choice(f"{where}.on_exhausted", phase.on_exhausted, ("recycle", "stop"))
        if phase.lr.warmup_steps > phase.steps:
            raise RecipeError(f"{where}.lr.warmup_steps={phase.lr.warmup_steps} exceeds steps={phase.steps}")
        for weights in (phase.mixture.start, phase.mixture.end or {}):
            for source in weights:
                self._check_source(f"{where}.mixture", source)
        for key, value in (("mask_rate", phase.mask_rate), ("guided_mlm.weight", phase.guided_mlm.weight)):
            values = value if isinstance(value, list) else [value]
            if len(values) not in (1, 2) or not all(0 <= v <= 1 for v in values):
                raise RecipeError(f"{where}.{key} must be a number in [0, 1] or [start, end], got {value}")
        guided = phase.guided_mlm.weight
        if (max(guided) if isinstance(guided, list) else guided) > 0 and self.lexicon is None:
            raise RecipeError(f"{where}.guided_mlm.weight > 0 needs a top-level 'lexicon' section")
        if max_positions is not None and phase.seq_len > max_positions:
            raise RecipeError(
                f"{where}.seq_len={phase.seq_len} exceeds max_position_embeddings={max_positions}"
            )

    def _check_source(self, where: str, source: str) -> None:
        if source not in self.sources:
            raise RecipeError(
                f"{where}: unknown source {source!r}{did_you_mean(source, list(self.sources))}; "
                f"sources: {sorted(self.sources)}"
            )


# ---- loading ------------------------------------------------------------------------------------


def resolve_recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file path, or the name of a shipped recipe (`rexbert-17m`, `tiny`, ...)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = RECIPE_DIR / (path.name if path.suffix else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    available = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
    raise FileNotFoundError(
        f"recipe {str(name_or_path)!r} is neither a file nor a shipped recipe"
        f"{did_you_mean(path.stem, available)}; shipped: {available}"
    )


def read_extending_yaml(
    path: str | Path,
    resolve: Callable[[str | Path], Path],
    error: type[Exception],
    what: str,
    _seen: tuple[Path, ...] = (),
) -> dict:
    """The mapping of a YAML file merged over the file its `extends` key names (a sibling file, or whatever
    `resolve` makes of the name). Shared by recipes and run configs; `error` and `what` word the errors."""
    path = resolve(path).resolve()
    if path in _seen:
        raise error(f"{what} {path} extends itself (cycle: {[str(p) for p in _seen]})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise error(f"{path}: a {what} is a YAML mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    sibling = path.parent / parent
    base = read_extending_yaml(
        sibling if sibling.is_file() else parent, resolve, error, what, _seen + (path,)
    )
    return deep_merge(base, data)


def read_recipe_dict(path: str | Path) -> dict:
    """The merged mapping of a recipe file (or shipped recipe name) and the files it extends."""
    return read_extending_yaml(path, resolve_recipe_path, RecipeError, "recipe")


def deep_merge(base: dict, override: dict) -> dict:
    """Recursive merge: mappings merge key by key, anything else in `override` replaces `base`."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `dotted.key=value` overrides (values parsed as YAML), e.g. `phases.general.steps=20`."""
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r} is not of the form dotted.key=value")
        key, raw = item.split("=", 1)
        patch: Any = yaml.safe_load(raw)
        for part in reversed(key.strip().split(".")):
            patch = {part: patch}
        data = deep_merge(data, patch)
    return data


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read, merge, override, type-check and validate a recipe."""
    resolved = resolve_recipe_path(path)
    data = apply_overrides(read_recipe_dict(resolved), overrides or [])
    recipe = from_mapping(Recipe, data, where=resolved.name)
    recipe.path = str(resolved)
    for name, phase in recipe.phases.items():
        phase.name = name
    return recipe.validate()


def from_mapping(cls, data: Any, where: str):
    """Build dataclass `cls` from `data`, rejecting unknown or missing keys and wrong types."""
    if not isinstance(data, dict):
        raise RecipeError(
            f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__} {data!r}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("derived")}
    for key in data:
        if key not in fields:
            raise RecipeError(f"{where}: unknown field {key!r}{did_you_mean(key, list(fields))}")
    values = {}
    for name, spec in fields.items():
        if name not in data:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise RecipeError(f"{where}: missing required field {name!r}")
            continue
        values[name] = _convert(hints[name], data[name], f"{where}.{name}")
    return cls(**values)


def _convert(hint, value: Any, where: str):
    """Check / convert `value` against a type hint (dataclasses, unions, dict, list, scalars)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except RecipeError as error:
                errors.append(str(error))
        raise RecipeError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if hint is Any:
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise RecipeError(f"{where}: expected {hint.__name__}, got {type(value).__name__} {value!r}")


def _check_choice(where: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RecipeError(f"{where}: {value!r} is not one of {choices}{did_you_mean(value, list(choices))}")


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
