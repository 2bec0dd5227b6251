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

A command that only submits work to Slurm (curation and tokenizing with the slurm executor) ends long before
the work does. It hands the lock over to its jobs (`hold_for_slurm_jobs`): the record keeps their ids, and a
later command is refused while `squeue` lists any of them, and takes the lock over once none is queued or
running, so no second command writes into the directory while the job array does.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import subprocess
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
        self._slurm_jobs: list[str] = []

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
        previous = _read(self.path)
        if previous.get("slurm_jobs"):
            try:
                self._check_slurm_jobs(previous)
            except DirectoryBusyError:
                lock.release()
                raise
        self._lock = lock
        self._record = open(self.path, "r+", encoding="utf-8")  # noqa: SIM115 (held until release)
        if not previous.get("slurm_jobs"):
            self._end_leftovers(previous)
        self._write()
        self._thread = threading.Thread(target=self._refresh, name="rexbert-lock", daemon=True)
        self._thread.start()
        return self

    def hold_for_slurm_jobs(self, job_ids: list[str]) -> None:
        """On release, leave the lock to these Slurm jobs (see the module docstring)."""
        self._slurm_jobs = [str(job) for job in job_ids]

    def release(self) -> None:
        if self._lock is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._record.seek(0)
        self._record.truncate(0)  # no holder: a later command has nothing to take over
        if self._slurm_jobs:
            record = {"slurm_jobs": self._slurm_jobs, "host": socket.gethostname(), "started": self._started}
            self._record.write(json.dumps(record))
            self._record.flush()
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

    def _check_slurm_jobs(self, previous: dict) -> None:
        """Refuse the lock while a Slurm job it was handed to is queued or running."""
        jobs = previous["slurm_jobs"]
        try:
            listed = subprocess.run(
                ["squeue", "-h", "-o", "%A", "-u", getpass.getuser()],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout.split()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            raise DirectoryBusyError(
                f"{self.root} was handed to Slurm job(s) {', '.join(jobs)} on {previous.get('started', '?')}, "
                f"and squeue cannot tell here whether they still run: run this where squeue works, or delete "
                f"{self.path} once they are over"
            ) from None
        running = [job for job in jobs if job in set(listed)]
        if running:
            raise DirectoryBusyError(
                f"{self.root} is in use by Slurm job(s) {', '.join(running)} (submitted by rexbert on "
                f"{previous.get('started', '?')}); wait for them or scancel them"
            )
        logger.info("%s: the Slurm jobs that held the lock are over (%s)", self.root, ", ".join(jobs))


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
