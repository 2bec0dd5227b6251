"""Small readers shared by the card builders: JSON inputs, safetensors sizes, number formatting."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safetensors import safe_open

__all__ = ["as_mapping", "count_parameters", "human_bytes", "human_count", "read_json"]


def read_json(path: str | Path, what: str) -> dict[str, Any]:
    """Load a JSON object, with an error that names `what` the file was supposed to be."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{what} {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold a JSON object, found {type(data).__name__}")
    return data


def as_mapping(value: dict | str | Path | None, what: str) -> dict[str, Any] | None:
    """Accept an already-loaded dict, a path to a JSON file, or None."""
    if value is None or isinstance(value, dict):
        return value
    return read_json(value, what)


def count_parameters(model_dir: str | Path) -> int:
    """Number of stored parameters, read from the safetensors headers only (no tensor is loaded).

    Tied weights are stored once by `save_pretrained`, so this counts them once.
    """
    files = sorted(Path(model_dir).glob("*.safetensors"))
    total = 0
    for file in files:
        with safe_open(str(file), framework="np") as handle:
            for name in handle.keys():
                total += math.prod(handle.get_slice(name).get_shape())
    return total


def human_count(value: float) -> str:
    """1234 -> '1.2K', 17_000_000 -> '17.0M' (counts of tokens and parameters in card text)."""
    for threshold, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold:
            return f"{value / threshold:.1f}{suffix}"
    return str(int(value))


def human_bytes(size: int) -> str:
    """File sizes for the dry-run listing."""
    for threshold, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= threshold:
            return f"{size / threshold:.1f} {suffix}"
    return f"{size} B"
