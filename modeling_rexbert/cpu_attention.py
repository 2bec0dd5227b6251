# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""Packed attention for float32 inference on an AVX-512 CPU, compiled on first use.

Why a kernel of our own: on a catalogue (product texts of ~128 tokens, length-sorted batches) PyTorch's
CPU SDPA kernel runs RexBERT's attention at 60-66 GFLOP/s on the 2-core AMD EPYC this project is measured
on (torch 2.13, 2 threads), a fifth of a float32 GEMM's rate there: at 128 tokens it splits every head
into blocks of 32 queries and calls BLAS per block, and each group of documents must first be padded into a
grid with a key or band mask. Attention was then 27-32% of `rexbert embed`'s float32 time at 17m shapes,
for 10% of its FLOPs. `cpu_attention.cpp` reads the packed stream as it is (no padding, no mask; local
layers compute only the keys inside the window) with register-blocked AVX-512 tiles:

    17m layers on 1,024 catalogue products        SDPA (grouped, masked)   this kernel
    global layers                                  66 GFLOP/s               197-218
    local (sliding-window) layers                  60                       223-248

(FLOPs of full attention inside each document, in embedding runs on the same day; local layers count the
full FLOPs but compute only the window's.) The outputs equal SDPA's to float32 rounding (3e-7 on
unit-scale inputs); the whole 17m encoder embeds catalogue texts 1.32-1.36x faster with it (alternated
in-process rounds, 1,024 products).

    from modeling_rexbert.cpu_attention import load_packed_cpu_attention

    load_packed_cpu_attention()  # True once built (about 10 s, once per machine) and checked

compiles `cpu_attention.cpp` with `torch.utils.cpp_extension` (a C++ compiler and ninja; cached per torch
version and kernel source under `TORCH_EXTENSIONS_DIR`, default `~/.cache/torch_extensions`), registers
`torch.ops.rexbert.packed_attention`, checks it against the eager reference and hands it to the `"sdpa"`
backend (`attention.packed_cpu_attention`), which takes it for every call it computes exactly: float32 CPU
tensors, head_dim 64 (every ModernBERT and Ettin shape), no dropout, no gradient wanted, no compiler or
exporter tracing, and in local layers consecutive positions inside each document (the kernel's window
counts offsets in the stream, as flash-attn's does; SDPA's compares position ids). Every
other call (training, half precision, `torch.compile`, `torch.export`) runs SDPA as before. Where the CPU
has no AVX-512 or nothing can be compiled, it says why in one warning and returns False; nothing changes.
The Hub remote code never loads it: it is this package's fast path (`CatalogueEncoder`, `rexbert embed`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import torch

from . import attention

__all__ = ["load_packed_cpu_attention"]

SOURCE = Path(__file__).with_name("cpu_attention.cpp")
# AVX-512 Foundation and FMA only (no -march=native): the build is cached per machine and must run on any
# AVX-512 CPU that shares the cache directory.
CFLAGS = ["-O3", "-mavx512f", "-mfma", "-fopenmp"]
# no compiler, no ninja, a read-only cache directory: the SDPA path stays
BUILD_ERRORS = (RuntimeError, OSError, ImportError, subprocess.SubprocessError)


def load_packed_cpu_attention() -> bool:
    """Build (once per process), check and enable the kernel; False, with one warning saying why, where it
    cannot run."""
    kernel = _checked_kernel()
    if kernel is None:
        return False
    attention.packed_cpu_attention = kernel
    return True


@functools.cache
def _checked_kernel():
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return _unavailable(
            f"the CPU runs {torch.backends.cpu.get_cpu_capability()}, the kernel needs AVX512"
        )
    try:
        _build()
    except BUILD_ERRORS as error:
        last_line = (str(error).strip().splitlines() or [""])[-1]
        return _unavailable(f"it did not build ({type(error).__name__}: {last_line})")
    kernel = torch.ops.rexbert.packed_attention
    mismatch = _check_against_eager(kernel)
    if mismatch > 1e-4:
        return _unavailable(f"its outputs differ from the eager reference by {mismatch:.1e}")
    return kernel


def build_directory() -> Path:
    """One directory per torch version and kernel source: two installs of different versions never rebuild
    (and overwrite) a library the other has loaded."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:12]
    return Path(root) / f"rexbert_cpu_attention-torch{torch.__version__}-{digest}"


def _build() -> None:
    """Compile (or load the cached build) under a lock the OS drops if the process dies: torch's own lock is
    a file that outlives a killed build and makes every later build wait for it forever, so one found while
    holding ours is stale and removed."""
    from filelock import FileLock
    from torch.utils.cpp_extension import load

    _put_ninja_on_path()
    directory = build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(directory / "rexbert.lock"):
        (directory / "lock").unlink(missing_ok=True)
        if not any(directory.glob("*.so")):
            print("Building RexBERT's CPU attention kernel (once per machine, about 10 s)", file=sys.stderr)
        load(
            "rexbert_cpu_attention",
            [str(SOURCE)],
            extra_cflags=CFLAGS,
            build_directory=str(directory),
            is_python_module=False,
        )


def _put_ninja_on_path() -> None:
    """torch runs `ninja` from PATH; the `ninja` package (a dependency) installs it next to the interpreter,
    which is not on PATH when a virtual environment's python is run without activating it."""
    if shutil.which("ninja") is None:
        try:
            import ninja
        except ImportError:
            return
        os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, os.environ.get("PATH", "")])


def _unavailable(reason: str) -> None:
    warnings.warn(
        f"RexBERT's CPU attention kernel is not used: {reason}; attention runs on SDPA", stacklevel=4
    )


def _check_against_eager(kernel) -> float:
    """Largest difference from `attention.eager_attention` on ragged documents, global and windowed."""
    from .unpadding import PackedBatch

    generator = torch.Generator().manual_seed(0)
    lengths = [1, 7, 16, 70, 131]
    query, key, value = torch.randn(3, sum(lengths), 2, 64, generator=generator).unbind(0)
    cu_seqlens = torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)
    positions = torch.cat([torch.arange(n) for n in lengths])
    batch = PackedBatch(1, len(positions), None, positions, cu_seqlens, max(lengths))
    return max(
        float((kernel(query, key, value, cu_seqlens, -1 if w is None else w) - expected).abs().max())
        for w in (None, 8)
        for expected in [attention.eager_attention(query, key, value, batch, w, 0.0)]
    )
