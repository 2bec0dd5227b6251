"""The processes a command started, found through /proc (Linux), so they can be ended with it.

datatrove's local executor starts a forkserver, a manager, a resource tracker and worker processes; when the
command is killed with SIGKILL they live on, and a worker that keeps writing poisons the next run. The lock
of an output directory records the holder's descendants (`descendants`); the next run that takes over the
stale lock ends them (`kill_trees`), and a command interrupted by SIGINT/SIGTERM ends its own
(`kill_trees([own pid])`, children only). A process is named by (pid, start time) so a reused pid is never
mistaken for it. Where /proc is missing everything here finds nothing.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

__all__ = ["ProcessId", "descendants", "kill_trees", "process_id"]

ProcessId = tuple[int, int]  # (pid, start time in clock ticks since boot)
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; fields from the state on


def process_id(pid: int) -> ProcessId | None:
    """(pid, start time) of a running process, or None (a zombie, dead but not yet reaped, is not running)."""
    fields = _stat_fields(pid)
    return None if fields is None or fields[0] == "Z" else (pid, int(fields[19]))


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    if not PROC.is_dir():
        return children
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> list[ProcessId]:
    """Every live descendant of `pid` (children, their children, ...)."""
    children = _children_map() if children is None else children
    found, pending = [], list(children.get(pid, []))
    while pending:
        child = pending.pop()
        identity = process_id(child)
        if identity is not None:
            found.append(identity)
            pending.extend(children.get(child, []))
    return found


def kill_trees(roots: list[ProcessId], *, include_roots: bool = True, grace: float = 2.0) -> int:
    """End the processes `roots` (those still alive with the same start time) and all their descendants:
    SIGTERM, then SIGKILL for what is left after `grace` seconds. Returns how many were signalled."""
    children = _children_map()
    targets: list[ProcessId] = []
    for pid, started in roots:
        if process_id(pid) == (pid, started):
            if include_roots:
                targets.append((pid, started))
            targets.extend(descendants(pid, children))
    targets = [t for t in dict.fromkeys(targets) if t[0] != os.getpid()]
    for pid, _ in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(process_id(pid) == (pid, s) for pid, s in targets):
        time.sleep(0.05)
    for pid, started in targets:
        if process_id(pid) == (pid, started):
            _signal(pid, signal.SIGKILL)
    return len(targets)


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except (ProcessLookupError, PermissionError):
        pass
