"""Shared test fixtures.

Everything runs offline on tiny models built in the test; caches go to a per-session temp dir.
Tests that need the real data in ../shared/data use the `shared_data` fixture, which skips with
the reason when the folder is absent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Busy-waiting OpenMP threads make 2-thread torch 25-40x slower whenever another process shares the cores
# (a subprocess test, a second job); passive waiting costs nothing on a quiet machine. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_CACHE = tempfile.mkdtemp(prefix="rexbert-hf-home-")
os.environ.setdefault("HF_HOME", _CACHE)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REXBERT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder, not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _sdpa_unless_the_test_loads_the_cpu_kernel(monkeypatch):
    """Every test starts on SDPA: the packed CPU attention kernel, once a test loads it (a CatalogueEncoder
    does), would otherwise take every later float32 inference call and change what those tests cover."""
    from modeling_rexbert import attention

    monkeypatch.setattr(attention, "packed_cpu_attention", None)


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
