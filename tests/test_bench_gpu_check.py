"""`bench/gpu_check.py`, the one script for the GPU machine, runs end to end here on the emulated kernels
(`--device cpu --emulate`), so its first GPU minutes find results rather than argument bugs: every backend's
parity within float32 / bfloat16 tolerance, the speed rows, a bf16 pretraining on a GPU kernel whose
validation loss falls; a failing step is recorded and the report still written; and what the GPU image lacks
is exactly what `--prepare` fetches. The end-to-end run is the rehearsal in the GPU image's package versions
where the package registry can be reached (one run of the script: about two minutes, most of it installing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def gpu_check(out: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "bench.gpu_check",
        "--device",
        "cpu",
        "--emulate",
        "--quick",
        "--out",
        str(out),
    ]
    return subprocess.run(
        [*command, *flags], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )


def test_gpu_check_runs_end_to_end_on_the_emulated_kernels(tmp_path):
    """In the GPU image's package versions (`--rehearse`: transformers 5.17, huggingface_hub 1.33, accelerate
    1.15, sentence-transformers 6.0.1 and the carried wheels installed as the device installs them) where the
    package registry can be reached, as CI's install can; in this venv's versions where it cannot."""
    from bench import device_wheels

    if registry_reachable(tmp_path):
        device_wheels.prepare(tmp_path / "whl")
        assert device_wheels.rehearse(tmp_path / "whl", tmp_path / "venv") == 0
        report = json.loads((tmp_path / "venv" / "gpu_check" / "gpu_check.json").read_text())
        assert report["environment"]["transformers"] == device_wheels.DEVICE_VERSIONS["transformers"]
        markdown = (tmp_path / "venv" / "gpu_check" / "gpu_check.md").read_text()
    else:
        done = gpu_check(tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads((tmp_path / "gpu_check.json").read_text())
        markdown = (tmp_path / "gpu_check.md").read_text()
    assert report["environment"]["emulated_kernels"] and report["environment"]["varlen_window"]
    assert {s: r["status"] for s, r in report["steps"].items()} == dict.fromkeys(
        ("parity", "speed", "pretraining"), "ok"
    )
    seen = {(row["backend"], row["dtype"]) for row in report["parity"]}
    assert {("flash_attention_2", "bfloat16"), ("varlen_attn", "bfloat16"), ("sdpa", "float32")} <= seen
    for row in report["parity"]:
        assert row["ragged"] <= (1e-4 if row["dtype"] == "float32" else 0.1), row
        assert row["packed"] <= (1e-4 if row["dtype"] == "float32" else 0.1), row
    assert (
        report["speed"][0]["backend"] == "flash_attention_2"
        and report["speed"][0]["rexbert_tokens_per_s"] > 0
    )
    pretraining = report["pretraining"]
    assert pretraining["backend"] == "varlen_attn" and pretraining["bf16"] and pretraining["falls"]
    assert markdown.startswith("# GPU check")


def registry_reachable(tmp_path: Path) -> bool:
    probe = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--no-deps",
        "six==1.16.0",
        "-d",
        str(tmp_path / "p"),
    ]
    return subprocess.run(probe, check=False, capture_output=True, timeout=120).returncode == 0


def test_a_failing_step_is_recorded_and_the_report_still_written(tmp_path):
    done = gpu_check(tmp_path, "--steps", "speed,pretraining", "--presets", "rexbert-nope", "--budget", "0")
    assert done.returncode == 1
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    speed = report["steps"]["speed"]
    assert speed["status"] == "failed" and "rexbert-nope" in speed["error"] and "parity" not in report
    assert report["steps"]["pretraining"] == {"status": "skipped", "error": "over the 0 s budget"}
    assert "speed: failed" in (tmp_path / "gpu_check.md").read_text()


def test_the_prepared_wheels_are_what_the_gpu_image_lacks():
    """The script's own requirements and theirs, not looking inside what the image holds: `datasets` (the
    recipe sources load through it) and its pure-Python needs; never torch, transformers or anything else
    the image has."""
    from bench.device_wheels import DEVICE_PACKAGES, missing_on_device

    missing = missing_on_device()
    assert "datasets" in missing and not set(missing) & DEVICE_PACKAGES
    assert {"torch", "transformers", "huggingface-hub", "accelerate"} <= DEVICE_PACKAGES
