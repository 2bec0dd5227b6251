"""Output directories a command owns.

A run, a pretraining or a curation writes `.rexbert-owner.json` into its output directory: what kind of
output it is, the fingerprint of the config that made it (with the config itself) and the top-level
entries the command created there. With it:

- a directory that is not empty and holds no marker is refused (it was not made by this command, and
  nothing in it is touched);
- the same config continues (resume); a changed config is refused in one line naming the changed fields,
  since finished work made with the old config would otherwise be reused as if it were new;
- `restart` deletes exactly the entries the marker lists, and nothing else;
- inside an entry that is a folder users also put files into (a model folder, a training phase's folder),
  the command lists what it wrote there in `.rexbert-written.json` (`record_written`): `restart` and
  rewrites (`remove_written`) delete only those, and a user's own file in the folder stays.

A root given as a URL (`s3://...`, `hf://...`, any fsspec protocol) is handled the same way through fsspec:
curation can write to object stores, where the marker is one object (object writes are atomic there).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from rexbert_core.typed_config import ConfigError

from .atomic import atomic_write_json
from .lock import LOCK_FILENAME

__all__ = [
    "MARKER_FILENAME",
    "WRITTEN_FILENAME",
    "OwnedDirectory",
    "changed_fields",
    "fingerprint",
    "record_written",
    "remove_written",
]

MARKER_FILENAME = ".rexbert-owner.json"
WRITTEN_FILENAME = ".rexbert-written.json"
IGNORED = {MARKER_FILENAME, LOCK_FILENAME}
logger = logging.getLogger("rexbert")


def _written(folder: Path) -> list[str]:
    listing = folder / WRITTEN_FILENAME
    try:
        return json.loads(listing.read_text(encoding="utf-8")) if listing.is_file() else []
    except ValueError:
        raise ConfigError(f"{listing}: damaged list of written files; move the folder aside") from None


def record_written(folder: str | Path, *names: str) -> None:
    """Add `names` (entries at the top of `folder`) to what the command wrote there; call it before
    writing them, so a kill never leaves an entry of ours unlisted."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    listed = _written(folder)
    if not set(names) <= set(listed):
        atomic_write_json(folder / WRITTEN_FILENAME, sorted(set(listed) | set(names)))


def remove_written(folder: str | Path) -> list[str]:
    """Delete what `folder`'s listing names, then the listing, then the folder when nothing else is left.
    Returns the names of what was kept (a user's files)."""
    folder = Path(folder)
    for name in _written(folder):
        path = folder / name
        if (path / WRITTEN_FILENAME).is_file():  # a folder of ours that users add to as well
            remove_written(path)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    (folder / WRITTEN_FILENAME).unlink(missing_ok=True)
    if not folder.is_dir():
        return []
    kept = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if not path.is_dir())
    if not kept:
        shutil.rmtree(folder)  # empty folders of ours only
    return kept


def fingerprint(config: Any) -> str:
    """SHA-256 of the config's canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ between two config mappings."""
    if isinstance(old, dict) and isinstance(new, dict):
        names = []
        for key in sorted(set(old) | set(new), key=str):
            names += changed_fields(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return names
    return [] if old == new else [prefix or "(the whole config)"]


class OwnedDirectory:
    """The output directory of one command of kind `kind` ("run", "pretrain", "curation")."""

    def __init__(self, root: str | Path, kind: str):
        self.kind = kind
        self.created_entries: list[str] = []  # what an earlier command of this kind created (at claim time)
        self.fs = None  # an fsspec filesystem when the root is a URL
        if "://" in str(root):
            from fsspec.core import url_to_fs

            self.fs, path = url_to_fs(str(root))
            self.root, self.marker = str(root).rstrip("/"), f"{path.rstrip('/')}/{MARKER_FILENAME}"
            self._path = path.rstrip("/")
        else:
            self.root = Path(root)
            self.marker = self.root / MARKER_FILENAME

    @classmethod
    def claim(cls, root: str | Path, kind: str, config: Any, *, restart: bool = False) -> OwnedDirectory:
        """Take `root` for a command of `kind` with `config` (see the module docstring); call it under the
        directory's lock."""
        owned = cls(root, kind)
        owned._make_root()
        record = owned.read()
        if record is None:
            strangers = sorted(name for name in owned._names() if name not in IGNORED)
            if strangers:
                raise ConfigError(
                    f"{owned.root} is not empty and was not written by `rexbert {kind}` ({', '.join(strangers[:5])}"
                    f"{', ...' if len(strangers) > 5 else ''}); use a new or empty directory"
                )
        elif record.get("kind") != kind:
            raise ConfigError(
                f"{owned.root} holds the output of `rexbert {record.get('kind')}`, not of `rexbert {kind}`"
            )
        elif restart:
            owned.remove_created(record)
            record = None
        elif record.get("fingerprint") != fingerprint(config):
            changed = changed_fields(record.get("config"), config)
            shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
            raise ConfigError(
                f"{owned.root} was written with another config ({shown} changed); use a new directory, or "
                f"--restart to discard what `rexbert {kind}` wrote there"
            )
        if record is None:
            owned.write({"kind": kind, "fingerprint": fingerprint(config), "config": config, "created": []})
        else:
            existing = set(owned._names())
            owned.created_entries = [name for name in record["created"] if name in existing]
        return owned

    def read(self) -> dict | None:
        try:
            if self.fs is None:
                text = self.marker.read_text(encoding="utf-8") if self.marker.is_file() else None
            else:
                text = self.fs.cat_file(self.marker).decode("utf-8") if self.fs.isfile(self.marker) else None
            return None if text is None else json.loads(text)
        except ValueError:
            raise ConfigError(f"{self.marker}: damaged ownership marker; move the directory aside") from None

    def write(self, record: dict) -> None:
        if self.fs is None:
            atomic_write_json(self.marker, record)
        else:
            self.fs.pipe_file(self.marker, json.dumps(record, indent=1).encode("utf-8"))

    def created(self, *names: str) -> None:
        """Record top-level entries this command created (they are what `restart` removes)."""
        record = self.read()
        new = sorted(set(record["created"]) | set(names))
        if new != record["created"]:
            self.write({**record, "created": new})

    def remove_created(self, record: dict | None = None) -> None:
        """Delete the entries the marker lists, then the marker."""
        record = record or self.read() or {"created": []}
        for name in record["created"]:
            self._remove(name)
        self._remove(MARKER_FILENAME)

    # ---- the few operations that differ between a local directory and a URL -------------------------

    def _make_root(self) -> None:
        if self.fs is None:
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            self.fs.makedirs(self._path, exist_ok=True)

    def _names(self) -> list[str]:
        """The top-level entries of the directory."""
        if self.fs is None:
            return [path.name for path in self.root.iterdir()]
        if not self.fs.exists(self._path):
            return []
        return [entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(self._path, detail=False)]

    def _remove(self, name: str) -> None:
        if self.fs is not None:
            if self.fs.exists(f"{self._path}/{name}"):
                self.fs.rm(f"{self._path}/{name}", recursive=True)
            return
        path = self.root / name
        if (path / WRITTEN_FILENAME).is_file():  # a folder users add to: only what the command wrote
            kept = remove_written(path)
            if kept:
                logger.warning("%s: kept %s (not written by `rexbert %s`)", path, ", ".join(kept), self.kind)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
