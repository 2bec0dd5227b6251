"""The processes a command started, so they can be ended with it (psutil).

datatrove's local executor starts a forkserver, a manager, a resource tracker and worker processes; when the
command is killed with SIGKILL they live on, and a worker that keeps writing poisons the next run. The lock
of an output directory records the holder's descendants (`descendants`); the next run that takes over the
stale lock ends them (`kill_trees`), and a command interrupted by SIGINT/SIGTERM ends its own
(`kill_trees([own pid])`, children only). A process is named by (pid, creation time) so a reused pid is
never mistaken for it.
"""

from __future__ import annotations

import os
import time

import psutil

__all__ = ["ProcessId", "descendants", "kill_trees", "process_id"]

ProcessId = tuple[int, float]  # (pid, creation time as psutil reports it: seconds since the epoch)


def _running(process: psutil.Process) -> bool:
    """Alive: the same process (`is_running` compares creation times) and not a zombie, which is dead and
    only not yet reaped."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _identity(process: psutil.Process) -> ProcessId | None:
    try:
        return (process.pid, process.create_time()) if _running(process) else None
    except psutil.Error:
        return None


def process_id(pid: int) -> ProcessId | None:
    """(pid, creation time) of a running process, or None."""
    try:
        return _identity(psutil.Process(pid))
    except psutil.Error:
        return None


def _process(identity: ProcessId) -> psutil.Process | None:
    """The running process `identity` names (None when it ended, or its pid now names another process)."""
    pid, created = identity
    try:
        process = psutil.Process(pid)
    except psutil.Error:
        return None
    return process if _identity(process) == (pid, created) else None


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [child for child in process.children(recursive=True) if _running(child)]
    except psutil.Error:
        return []


def descendants(pid: int) -> list[ProcessId]:
    """Every live descendant of `pid` (children, their children, ...)."""
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return []
    return [identity for child in _tree(root) if (identity := _identity(child)) is not None]


def kill_trees(roots: list[ProcessId], *, include_roots: bool = True, grace: float = 2.0) -> int:
    """End the processes `roots` (those still alive with the same creation time) and all their descendants:
    SIGTERM, then SIGKILL for what is left after `grace` seconds. Returns how many were signalled."""
    targets: dict[int, psutil.Process] = {}
    for identity in roots:
        process = _process(tuple(identity))
        if process is None:
            continue
        for member in ([process] if include_roots else []) + _tree(process):
            if member.pid != os.getpid():
                targets.setdefault(member.pid, member)
    for process in targets.values():
        _quietly(process.terminate)
    # Polled, not `psutil.wait_procs`: that reaps our own children, and the library that started them
    # (multiprocessing, datatrove) would then fail waiting for them (ECHILD).
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_running(p) for p in targets.values()):
        time.sleep(0.05)
    for process in targets.values():
        if _running(process):
            _quietly(process.kill)
    return len(targets)


def _quietly(signal_process) -> None:
    try:
        signal_process()
    except psutil.Error:
        pass
