"""Typed configs and the project's error types: the ground floor every RexBERT package may build on.

Recipes (`trainers`), curation configs (`curation`) and the run config (`rexbert`) are dataclasses
built from mappings by `from_mapping`, so all three refuse unknown keys with a suggestion, check types
and run their cross-field checks when loaded, and take relative paths from the working directory.
This package imports nothing of the project; it needs only PyYAML.
"""

from .errors import ConfigError, DataError, RunError, UsageError
from .files import add_override_argument, apply_overrides, deep_merge, find_config_file, read_yaml_mapping
from .schema import (
    check_choice,
    check_fields,
    check_value,
    did_you_mean,
    explicit_fields,
    from_mapping,
    path_field,
    resolve_path,
    to_mapping,
    with_changes,
)

__all__ = [
    "ConfigError",
    "DataError",
    "RunError",
    "UsageError",
    "add_override_argument",
    "apply_overrides",
    "check_choice",
    "check_fields",
    "check_value",
    "deep_merge",
    "did_you_mean",
    "explicit_fields",
    "find_config_file",
    "from_mapping",
    "path_field",
    "read_yaml_mapping",
    "resolve_path",
    "to_mapping",
    "with_changes",
]
