"""Size and SHA-256 of model files, recorded when they are written and checked before they are used, so
a truncated or damaged file is refused by name instead of loading as garbage (a truncated fastText model
loads and scores every document 0.0; a damaged safetensors file fails deep inside a loader with no name).

`record(directory, names)` writes `checksums.json` next to the files; `verify(directory)` checks every
file it lists; `verify_model_dir` also checks that every safetensors file is as long as its header says (for
directories written elsewhere, without checksums). `verify_file(path)` checks one file against its
`<file>.sha256.json`.

Files too large to hash whenever they are opened (token shards: hundreds of GB at corpus scale) carry one
digest per `BLOCK_SIZE` block instead (`block_digests`), and `BlockChecks` verifies each block the first time
any of its bytes is read, so everything a run actually uses is checked once, at about the cost of reading it
(SHA-256 runs at about 2 GB/s per core here: `python -m bench.bench_data`), and `verify_all` checks every
block on request. A damaged block is refused naming the file and its byte range.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from rexbert_core.typed_config import DataError

from .atomic import atomic_write_json

__all__ = [
    "BLOCK_SIZE",
    "CHECKSUMS_FILENAME",
    "BlockChecks",
    "block_digests",
    "digest",
    "record",
    "record_file",
    "safetensors_problem",
    "verify",
    "verify_file",
    "verify_model_dir",
]

CHECKSUMS_FILENAME = "checksums.json"
BLOCK_SIZE = 16 << 20  # bytes per block digest: a first read of a block costs about 8 ms to check
DIGEST_CHARS = 32  # 128 bits of each block's SHA-256


def digest(path: str | Path) -> dict:
    """`{"size": bytes, "sha256": hex}` of a file (read in 4 MiB blocks)."""
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(4 << 20):
            sha.update(block)
            size += len(block)
    return {"size": size, "sha256": sha.hexdigest()}


def record(directory: str | Path, names: list[str]) -> Path:
    """Write `checksums.json` in `directory` for the listed files (relative names)."""
    directory = Path(directory)
    return atomic_write_json(
        directory / CHECKSUMS_FILENAME, {name: digest(directory / name) for name in sorted(names)}
    )


def verify(directory: str | Path) -> None:
    """Check every file `checksums.json` lists (nothing to check without one); raise `DataError` naming the
    first file that is missing, of another size or of other content."""
    directory = Path(directory)
    listing = directory / CHECKSUMS_FILENAME
    if not listing.is_file():
        return
    for name, expected in json.loads(listing.read_text(encoding="utf-8")).items():
        _check(directory / name, expected)


def record_file(path: str | Path) -> Path:
    """Write `<path>.sha256.json` for one file (a model file that lives outside a model directory)."""
    return atomic_write_json(f"{path}.sha256.json", digest(path))


def verify_file(path: str | Path) -> None:
    """Check one file against its `<path>.sha256.json`, when there is one."""
    sidecar = Path(f"{path}.sha256.json")
    if sidecar.is_file():
        _check(Path(path), json.loads(sidecar.read_text(encoding="utf-8")))


def _check(path: Path, expected: dict) -> None:
    if not path.is_file():
        raise DataError(f"{path}: missing (listed in the checksums written with it)")
    size = path.stat().st_size
    if size != expected["size"]:
        raise DataError(f"{path}: damaged or truncated ({size:,} bytes, {expected['size']:,} when written)")
    if digest(path)["sha256"] != expected["sha256"]:
        raise DataError(f"{path}: damaged (its SHA-256 differs from the one recorded when it was written)")


def safetensors_problem(path: str | Path) -> str | None:
    """What is wrong with a safetensors file (None when its header parses and its length matches)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            (header_length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_length))
    except (OSError, struct.error, ValueError):
        return "unreadable safetensors header"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    expected = 8 + header_length + end
    size = path.stat().st_size
    return None if size == expected else f"{size:,} bytes where its header says {expected:,}"


def verify_model_dir(directory: str | Path) -> None:
    """Refuse a model directory whose weights are damaged, naming the file (see the module docstring)."""
    directory = Path(directory)
    verify(directory)
    for path in sorted(directory.glob("*.safetensors")):
        problem = safetensors_problem(path)
        if problem:
            raise DataError(f"{path}: damaged or truncated weights ({problem})")


def block_digests(path: str | Path, block_size: int = BLOCK_SIZE) -> list[str]:
    """SHA-256 (its first 128 bits, hex) of every `block_size` block of a file, in order."""
    digests = []
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digests.append(hashlib.sha256(block).hexdigest()[:DIGEST_CHARS])
    return digests


class BlockChecks:
    """The blocks of one file, checked against their recorded digests the first time they are read.

    `data` is the file's content as a buffer (a memory map): `check(start, stop)` verifies the blocks holding
    bytes `[start, stop)` not verified yet, and raises `DataError` naming the file and the byte range of the
    first damaged one.
    """

    def __init__(self, path: str | Path, data, digests: list[str], block_size: int = BLOCK_SIZE):
        self.path, self.block_size, self.digests = Path(path), block_size, digests
        self.data = memoryview(data).cast("B")
        self.verified: set[int] = set()
        expected = -(-len(self.data) // block_size)
        if len(digests) != expected:
            raise DataError(f"{self.path}: {len(digests)} block checksums recorded for {expected} blocks")

    def check(self, start: int, stop: int) -> None:
        if stop <= start:
            return
        for block in range(start // self.block_size, (stop - 1) // self.block_size + 1):
            if block not in self.verified:
                self._verify(block)

    def verify_all(self) -> None:
        for block in range(len(self.digests)):
            if block not in self.verified:
                self._verify(block)

    def _verify(self, block: int) -> None:
        begin = block * self.block_size
        end = min(begin + self.block_size, len(self.data))
        if hashlib.sha256(self.data[begin:end]).hexdigest()[:DIGEST_CHARS] != self.digests[block]:
            raise DataError(
                f"{self.path}: damaged at bytes {begin:,}-{end - 1:,} (block {block}: its SHA-256 differs "
                "from the one recorded when it was written)"
            )
        self.verified.add(block)
