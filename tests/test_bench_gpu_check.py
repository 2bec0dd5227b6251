"""`bench/gpu_check.py` runs end to end in its CPU smoke mode, so the GPU checks stay runnable between the
sessions that have a GPU: the parity it measures on CPU is within float32 / bfloat16 tolerance, the speed
rows and the pretraining record are there, and the validation loss of the short pretraining falls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_run_on_cpu(tmp_path):
    command = [sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--quick", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    for row in report["parity"]:
        assert row["ragged"] <= (1e-4 if row["dtype"] == "float32" else 0.1), row
        assert row["packed"] <= (1e-4 if row["dtype"] == "float32" else 0.1), row
    assert {row["backend"] for row in report["parity"]} >= {"sdpa", "eager"}
    assert report["speed"][0]["rexbert_tokens_per_s"] > 0 and report["pretraining"]["falls"]
    assert (tmp_path / "gpu_check.md").read_text().startswith("# GPU check")
