"""Files that are either complete or absent: written next to their final name, flushed to disk, then
renamed over it (`os.replace` is atomic on POSIX), so a kill at any moment leaves the old file or the new
one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_save_figure", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (see the module docstring); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any, **dump_options: Any) -> Path:
    options = {"indent": 1, "default": str, **dump_options}
    return atomic_write_text(path, json.dumps(value, **options) + "\n")


def atomic_save_figure(figure, path: str | Path, **savefig_options: Any) -> Path:
    """A matplotlib figure saved atomically (rendered in memory, in the format the suffix names)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **savefig_options)
    return atomic_write_bytes(path, buffer.getvalue())
