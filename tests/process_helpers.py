"""Child processes: the `rexbert` command killed at a chosen moment (fault injection), and Python scripts
that report in JSON (loading checks in a fresh interpreter)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def rexbert_subprocess(args: list[str], **kwargs) -> subprocess.Popen:
    """`python -m rexbert ARGS` from the repository root, stderr captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "rexbert", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def kill_when(process: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL `process` as soon as `ready()` holds (polled every 20 ms); fail if it ends first."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            process.kill()
    pytest.fail(f"the command ended (code {process.returncode}) or timed out before the kill point")


def python_json(script: str, *args: str, flags: tuple[str, ...] = (), timeout: float = 300, **kwargs) -> dict:
    """Run `python FLAGS -c SCRIPT ARGS` (keyword arguments go to `subprocess.run`, e.g. `env`, `cwd`) and
    return the JSON its last output line holds; fail with the end of its stderr if it exits non-zero."""
    child = subprocess.run(
        [sys.executable, *flags, "-c", script, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        **kwargs,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])
