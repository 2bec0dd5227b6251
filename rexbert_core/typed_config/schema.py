"""Dataclasses built from plain mappings, strictly: the one schema mechanism of every project config.

`from_mapping(cls, data, where)` builds dataclass `cls` from a mapping (what `yaml.safe_load` returns):

- an unknown key is an error naming it and the closest valid key ("did you mean");
- a missing required field is an error naming it;
- values are type-checked against the annotations (nested dataclasses, `X | None`, `list[X]`,
  `dict[str, X]`, `Literal[...]` choices, `int`, `float` (ints and "1e-4" strings accepted), `str`,
  `bool`, `Any`), so a config stops before anything runs, not hours later;
- a class with a `from_config(value, where)` classmethod builds itself from the value it is written as
  (e.g. a schedule from a number or `[start, end]`) and writes itself back with `to_config()`;
- fields declared with `path_field()` are paths: relative ones are made absolute against the working
  directory (the one rule for relative paths in every config; see `resolve_path`);
- after a dataclass is built, its `check(where)` method runs when it has one: the place for cross-field
  rules (mixture weights, schedules, sequence length against positions);
- a value that already is the annotated dataclass is taken as it is (configs assembled in code pass typed
  pieces down: a stage builds its library's config once and hands it over).

`with_changes(config, where, **changes)` is the typed way to change a built config: the copy goes through
the same rules as a file. `explicit_fields(config)` names the fields its mapping set (the rest are
defaults), which is what precedence rules such as "a section's own seed wins over the run's" read.

Every message starts with `where`, the dotted location of the value (`recipe.phases.general.lr.peak`),
so the user sees which file and field to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Literal, Union

from .errors import ConfigError

__all__ = [
    "check_choice",
    "check_fields",
    "check_value",
    "did_you_mean",
    "explicit_fields",
    "from_mapping",
    "path_field",
    "resolve_path",
    "to_mapping",
    "with_changes",
]

_PATH = "path"  # dataclass field metadata key: "always" (a local path) or "if_exists" (a path or a Hub id)
_EXPLICIT = "_explicit_fields"  # instance attribute: the fields the mapping set


def path_field(default: Any = None, *, hub_id: bool = False) -> Any:
    """A dataclass field holding a path (or a list of paths / glob patterns), resolved by `resolve_path`.

    `hub_id=True`: the value may also be a Hub repository id ("org/name"); it is resolved only when a
    local file or folder of that name exists.
    """
    return field(default=default, metadata={_PATH: "if_exists" if hub_id else "always"})


def resolve_path(value: str | None, *, only_if_exists: bool = False) -> str | None:
    """The one rule for relative paths in configs: they are taken from the working directory of the
    command, and stored absolute. URLs (`s3://...`, `hf://...`) and absolute paths are kept as they are."""
    if not value or "://" in value or Path(value).is_absolute():
        return value
    absolute = Path.cwd() / value
    if only_if_exists and not absolute.exists():
        return value
    return str(absolute)


def did_you_mean(word: str, options: list[str]) -> str:
    """` (did you mean 'x'?)` for the closest option, or an empty string. An option that the word starts
    with, or that starts with the word, wins over spelling similarity (`evaluation` -> `eval`)."""
    lowered = word.lower()
    prefixed = [
        o
        for o in options
        if min(len(o), len(word)) >= 3 and (lowered.startswith(o.lower()) or o.lower().startswith(lowered))
    ]
    close = prefixed or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(where: str, value: Any, choices: tuple | list) -> None:
    """Raise `ConfigError` when `value` is not one of `choices`, suggesting the closest one."""
    if value not in choices:
        raise ConfigError(
            f"{where}: {value!r} is not one of {tuple(choices)}{did_you_mean(str(value), list(choices))}"
        )


def _settable_fields(cls) -> dict[str, dataclasses.Field]:
    """Fields a mapping may set (fields marked `derived` in their metadata are filled in by code)."""
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("derived")}


def check_fields(cls, data: Any, where: str) -> dict[str, Any]:
    """Type-check the keys a mapping gives for dataclass `cls` without requiring the others; returns the
    converted values. For partial settings merged over defaults later (budgets, card options)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = _settable_fields(cls)
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown field {key!r}{did_you_mean(str(key), list(fields))}; "
                f"{cls.__name__} has {sorted(fields)}"
            )
        values[key] = _convert(hints[key], value, f"{where}.{key}", fields[key])
    return values


def from_mapping(cls, data: Any, where: str):
    """Build dataclass `cls` from `data` (see the module docstring for the rules)."""
    values = check_fields(cls, {} if data is None else data, where)
    for name, spec in _settable_fields(cls).items():
        if (
            name not in values
            and spec.default is dataclasses.MISSING
            and spec.default_factory is dataclasses.MISSING
        ):
            raise ConfigError(f"{where}: missing required field {name!r}")
    instance = cls(**values)
    object.__setattr__(instance, _EXPLICIT, frozenset(values))  # works on frozen dataclasses too
    if hasattr(instance, "check"):
        instance.check(where)
    return instance


def explicit_fields(instance: Any) -> frozenset[str]:
    """The fields of a config dataclass that its mapping set (empty for one built in code)."""
    return getattr(instance, _EXPLICIT, frozenset())


def with_changes(instance: Any, where: str, /, **changes: Any):
    """A copy of config dataclass `instance` with `changes`, built by `from_mapping` as a file would be
    (types checked, paths resolved, `check` run). Derived fields are carried over; the copy's explicit
    fields are the original's plus the changed ones."""
    cls = type(instance)
    settable = _settable_fields(cls)
    unknown = sorted(set(changes) - set(settable))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}{did_you_mean(unknown[0], list(settable))}")
    data = {name: to_mapping(getattr(instance, name)) for name in settable}
    copy = from_mapping(cls, {**data, **changes}, where)
    for spec in dataclasses.fields(cls):
        if spec.metadata.get("derived"):
            object.__setattr__(copy, spec.name, getattr(instance, spec.name))
    object.__setattr__(copy, _EXPLICIT, explicit_fields(instance) | frozenset(changes))
    return copy


def to_mapping(instance: Any) -> Any:
    """The plain-data form of a config dataclass (for writing it down as YAML or JSON): the fields a
    mapping may set, so that `from_mapping` reads it back (derived fields are left out)."""
    if hasattr(instance, "to_config"):
        return instance.to_config()
    if dataclasses.is_dataclass(instance):
        return {name: to_mapping(getattr(instance, name)) for name in _settable_fields(type(instance))}
    if isinstance(instance, dict):
        return {k: to_mapping(v) for k, v in instance.items()}
    if isinstance(instance, (list, tuple)):
        return [to_mapping(v) for v in instance]
    return instance


def check_value(hint: Any, value: Any, where: str) -> Any:
    """Check / convert one value against a type hint (the rules of `from_mapping`), for mappings checked
    against another library's dataclass (e.g. `TrainingArguments` fields in a recipe)."""
    return _convert_type(hint, value, where)


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _convert(hint, value: Any, where: str, spec: dataclasses.Field | None = None):
    """Check / convert `value` against a type hint; path fields are resolved."""
    value = _convert_type(hint, value, where)
    kind = spec.metadata.get(_PATH) if spec is not None else None
    if kind:
        only_if_exists = kind == "if_exists"
        if isinstance(value, str):
            value = resolve_path(value, only_if_exists=only_if_exists)
        elif isinstance(value, list):
            value = [
                resolve_path(v, only_if_exists=only_if_exists) if isinstance(v, str) else v for v in value
            ]
    return value


def _convert_type(hint, value: Any, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert_type(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        names = " or ".join(_hint_name(o) for o in options)
        raise ConfigError(f"{where}: expected {names}, got {_describe(value)}")
    if origin is Literal:
        check_choice(where, value, args)
        return value
    if hasattr(hint, "from_config"):
        return value if isinstance(value, hint) else hint.from_config(value, where)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_mapping(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        return (
            {str(k): _convert_type(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else value
        )
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_describe(value)}")
        return [_convert_type(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if hint is Any:
        return value
    if hint is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):  # a nan learning rate trains nan weights without a word
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return number
    elif isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}: expected {_hint_name(hint)}, got {_describe(value)}")


def _hint_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if origin is Literal:
        return f"one of {typing.get_args(hint)}"
    if dataclasses.is_dataclass(hint):
        return f"a mapping of {hint.__name__} fields"
    return getattr(hint, "__name__", str(hint))
