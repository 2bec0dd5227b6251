"""Config files: YAML mappings that may extend another file, and `dotted.key=value` overrides.

A config file may start with `extends: <file>`: the name of a sibling file, or whatever the caller's
`find` makes of the name (a shipped config). Mappings merge key by key over the extended file; any
other value replaces it. Overrides from the command line (`--set phases.general.steps=20`) merge the
same way, their values parsed as YAML. The result is a plain mapping, handed to `from_mapping`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .schema import did_you_mean

__all__ = ["add_override_argument", "apply_overrides", "deep_merge", "find_config_file", "read_yaml_mapping"]


def find_config_file(name_or_path: str | Path, shipped_dir: Path, what: str) -> Path:
    """A config file path, or the name of one shipped in `shipped_dir` (`tiny` for `tiny.yaml`); an error
    with the closest shipped name otherwise."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_dir / (path.name if path.suffix else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    available = sorted(p.stem for p in shipped_dir.glob("*.yaml"))
    raise ConfigError(
        f"{what} {str(name_or_path)!r} is neither a file nor a shipped {what}{did_you_mean(path.stem, available)}; "
        f"shipped: {available}"
    )


def add_override_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set dotted.key=value` (repeatable, into `args.overrides`), for `apply_overrides`."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help=f"override a config field (value parsed as YAML), e.g. {example}",
    )


def read_yaml_mapping(path: str | Path, find: Callable[[str | Path], Path], what: str) -> dict:
    """The mapping of a YAML file merged over the file its `extends` key names. `find` turns a name into
    an existing file (or raises `ConfigError`); `what` words the errors ("recipe", "run config")."""
    return _read(path, find, what, ())


def _read(path: str | Path, find: Callable[[str | Path], Path], what: str, seen: tuple[Path, ...]) -> dict:
    path = find(path).resolve()
    if path in seen:
        raise ConfigError(f"{what} {path} extends itself (cycle: {[str(p) for p in seen]})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{at}: not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} is a YAML mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    sibling = path.parent / str(parent)
    base = _read(sibling if sibling.is_file() else parent, find, what, seen + (path,))
    return deep_merge(base, data)


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
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        try:
            patch: Any = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({error})") from None
        for part in reversed(key.strip().split(".")):
            patch = {part: patch}
        data = deep_merge(data, patch)
    return data
