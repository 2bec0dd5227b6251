"""One command at a time per output directory.

`DirectoryLock(root).acquire()` takes filelock's exclusive lock on `<root>/.rexbert.lock` (`flock`, which
the kernel releases when the holder exits in any way, SIGKILL included; filelock also drops the descriptor
in forked children, so a killed holder's workers do not keep the lock); a second command is refused at once,
naming the holder's pid. Leaving the `with` block by an exception (SIGINT, SIGTERM, a failure) first ends
the processes the holder started. While held, the lock file says who holds it and, refreshed twice a second
by a background thread, which processes the holder has started; a clean release empties it (the file stays,
as filelock keeps it, so that every command locks the same inode). A command that finds the lock free but a
record left in the file by a killed holder takes it over and first ends those leftover processes
(`safe_outputs.processes`), so a worker of the dead run cannot go on writing into the directory.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import filelock

from rexbert_core.typed_config import UsageError

from .processes import ProcessId, descendants, kill_trees, process_id

__all__ = ["LOCK_FILENAME", "DirectoryBusyError", "DirectoryLock"]

LOCK_FILENAME = ".rexbert.lock"
REFRESH_SECONDS = 0.5
logger = logging.getLogger(__name__)


class DirectoryBusyError(UsageError):
    """Another command is writing into the same output directory."""


class DirectoryLock:
    """An exclusive lock on an output directory for the life of a command (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / LOCK_FILENAME
        self._lock: filelock.FileLock | None = None
        self._record = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.strftime("%Y-%m-%dT%H:%M:%S")

    def acquire(self) -> DirectoryLock:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.path, timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = _read(self.path)
            raise DirectoryBusyError(
                f"{self.root} is in use by another rexbert command (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, since {holder.get('started', '?')}); wait for it or use another output"
            ) from None
        self._lock = lock
        self._record = open(self.path, "r+", encoding="utf-8")  # noqa: SIM115 (held until release)
        self._end_leftovers(_read(self.path))
        self._write()
        self._thread = threading.Thread(target=self._refresh, name="rexbert-lock", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        if self._lock is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._record.truncate(0)  # no holder: a later command has nothing to take over
        self._record.close()
        self._lock.release()
        self._lock = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:  # interrupted or failed: end what this command started before letting go
            kill_trees(descendants(os.getpid()))
        self.release()

    # ---- the record in the lock file -------------------------------------------------------------------

    def _write(self) -> None:
        me = process_id(os.getpid())
        record = {
            "pid": os.getpid(),
            "start": me[1] if me else None,
            "host": socket.gethostname(),
            "started": self._started,
            "descendants": [list(p) for p in descendants(os.getpid())],
        }
        self._record.seek(0)
        self._record.truncate()
        self._record.write(json.dumps(record))
        self._record.flush()

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                self._write()
            except (OSError, ValueError):  # the file was closed under us: the lock is being released
                return

    def _end_leftovers(self, previous: dict) -> None:
        """A lock file that is free but not empty was left by a holder that did not release it (killed):
        end the processes it left running."""
        if not previous or previous.get("host") != socket.gethostname():
            return
        roots: list[ProcessId] = [tuple(p) for p in previous.get("descendants", [])]
        if previous.get("pid") and previous.get("start"):
            roots.append((previous["pid"], previous["start"]))
        ended = kill_trees(roots)
        logger.warning(
            "%s: took over the lock of a rexbert command that did not finish (pid %s)%s",
            self.root,
            previous.get("pid"),
            f"; ended {ended} process(es) it had left running" if ended else "",
        )


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
