"""Running the `rexbert` command in a child process and killing it at a chosen moment (fault injection)."""

from __future__ import annotations

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
