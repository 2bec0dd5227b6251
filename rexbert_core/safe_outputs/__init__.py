"""Outputs that survive kills, concurrent commands and damaged files: the ground floor every command that
writes a directory builds on.

    atomic      files written aside and renamed into place (complete or absent)
    checksums   size and SHA-256 of model files, recorded when written, checked before use
    lock        one command at a time per output directory; a killed holder's leftovers are ended
    ownership   a marker with the config fingerprint: foreign directories and changed configs are refused
    processes   the processes a command started, found through /proc

Imports nothing of the project but `typed_config` (its error types).
"""

from .atomic import atomic_save_figure, atomic_write_bytes, atomic_write_json, atomic_write_text
from .checksums import (
    BLOCK_SIZE,
    CHECKSUMS_FILENAME,
    BlockChecks,
    block_digests,
    record,
    record_file,
    safetensors_problem,
    verify,
    verify_file,
    verify_model_dir,
)
from .lock import LOCK_FILENAME, DirectoryBusyError, DirectoryLock
from .ownership import (
    MARKER_FILENAME,
    WRITTEN_FILENAME,
    OwnedDirectory,
    changed_fields,
    fingerprint,
    record_written,
    remove_written,
)
from .processes import descendants, kill_trees, process_id

__all__ = [
    "BLOCK_SIZE",
    "CHECKSUMS_FILENAME",
    "LOCK_FILENAME",
    "MARKER_FILENAME",
    "WRITTEN_FILENAME",
    "BlockChecks",
    "DirectoryBusyError",
    "DirectoryLock",
    "OwnedDirectory",
    "atomic_save_figure",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "block_digests",
    "changed_fields",
    "descendants",
    "fingerprint",
    "kill_trees",
    "process_id",
    "record",
    "record_file",
    "record_written",
    "remove_written",
    "safetensors_problem",
    "verify",
    "verify_file",
    "verify_model_dir",
]
