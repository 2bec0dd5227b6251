# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""The GPU varlen-attention kernels RexBERT calls, emulated on any device with their contracts, so that the
`flash_attention_2` and `varlen_attn` code paths run (forward and backward) where there is no GPU.

- `flash_attn_varlen_func`: flash-attn 2.x's `flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k,
  max_seqlen_q, max_seqlen_k, dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1), ...)`.
- `varlen_attn` (torch 2.12 and later: `window_size`) and `varlen_attn_without_window` (torch 2.10 / 2.11:
  `is_causal`, no window): PyTorch's `torch.nn.attention.varlen.varlen_attn`.

Written from the kernels' documented semantics and their argument checks (the same messages, raised as
`RuntimeError` as `TORCH_CHECK` does): q/k/v `(tokens, heads, head_dim)` in float16 or bfloat16, the same
dtype and device, last dimension contiguous, head_dim <= 256, query heads a multiple of key heads;
`cu_seqlens` int32, contiguous, `(batch + 1,)`, on the device of q. The window `(left, right)` is inclusive:
key j of a sequence is visible to query i when `i + sk - sq - left <= j <= i + sk - sq + right` (flash's
bottom-right alignment; `sk == sq` here), -1 meaning unbounded; `causal` sets `right = 0`.

Stricter than the kernels where they fail silently (a wrong result rather than an error on a GPU): the
offsets must be non-decreasing from 0 and end at the token count, and `max_seqlen` must be at least the
longest sequence. Attention itself is computed per sequence in float32 and returned in the input dtype,
with autograd; dropout uses torch's generator, not the kernel's.

`with installed(...)` puts the emulations where `modeling_rexbert.attention` looks for the kernels; tests and
`python -m bench.gpu_check --device cpu --emulate` use it. `allow_float32=True` also accepts float32
inputs, to compare a backend's arithmetic with the sdpa and eager paths at float32 precision.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

__all__ = [
    "EmulatedFlashAttnVarlen",
    "EmulatedTorchVarlen",
    "flash_attn_varlen_func",
    "installed",
    "varlen_attn",
    "varlen_attn_without_window",
]

HALF = (torch.float16, torch.bfloat16)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def check_inputs(q, k, v, cu_q, cu_k, max_q: int, max_k: int, dtypes=HALF, cu_k_name="cu_seqlens_k"):
    """The kernels' argument checks (see the module docstring); returns the offsets as Python lists."""
    _require(q.dtype in dtypes, "FlashAttention only support fp16 and bf16 data type")
    _require(k.dtype == q.dtype, "query and key must have the same dtype")
    _require(v.dtype == q.dtype, "query and value must have the same dtype")
    _require(cu_q.dtype == torch.int32, "cu_seqlens_q must have dtype int32")
    _require(cu_k.dtype == torch.int32, f"{cu_k_name} must have dtype int32")
    for name, tensor in (("q", q), ("k", k), ("v", v), ("cu_seqlens_q", cu_q), (cu_k_name, cu_k)):
        _require(tensor.device == q.device, f"{name} must be on the same device as the query ({q.device})")
    for tensor in (q, k, v):
        _require(
            tensor.dim() == 3, f"expected (tokens, heads, head_dim) tensors, got shape {tuple(tensor.shape)}"
        )
        _require(tensor.stride(-1) == 1, "Input tensor must have contiguous last dimension")
    _require(cu_q.is_contiguous() and cu_k.is_contiguous(), "cu_seqlens must be contiguous")
    _require(
        cu_q.dim() == 1 and cu_q.shape == cu_k.shape,
        "cu_seqlens_q and cu_seqlens_k must have shape (batch + 1,)",
    )
    batch = cu_q.numel() - 1
    _require(batch > 0, "batch size must be positive")
    heads, head_dim = q.shape[1], q.shape[2]
    _require(head_dim <= 256, "FlashAttention forward only supports head dimension at most 256")
    _require(heads % k.shape[1] == 0, "Number of heads in key/value must divide number of heads in query")
    _require(
        k.shape == v.shape and k.shape[2] == head_dim, f"key and value must be (tokens, heads_k, {head_dim})"
    )
    offsets_q, offsets_k = cu_q.tolist(), cu_k.tolist()
    for name, offsets, total, longest in (
        ("q", offsets_q, q.shape[0], max_q),
        ("k", offsets_k, k.shape[0], max_k),
    ):
        lengths = [b - a for a, b in zip(offsets, offsets[1:])]
        _require(
            offsets[0] == 0 and min(lengths) >= 0 and offsets[-1] == total,
            f"cu_seqlens_{name} must rise from 0 to the {total} tokens, got {offsets[:4]}...{offsets[-1:]}",
        )
        _require(
            isinstance(longest, int) and longest >= max(lengths),
            f"max_seqlen_{name}={longest!r} is shorter than the longest sequence ({max(lengths)}): the "
            "kernel would compute a wrong result",
        )
    return offsets_q, offsets_k


def attend(
    q, k, v, offsets_q, offsets_k, scale: float, left: int, right: int, dropout: float
) -> torch.Tensor:
    """Attention per sequence in float32, inclusive window (left, right) with bottom-right alignment."""
    groups = q.shape[1] // k.shape[1]
    outputs = []
    for (q0, q1), (k0, k1) in zip(zip(offsets_q, offsets_q[1:]), zip(offsets_k, offsets_k[1:])):
        qs = q[q0:q1].float()
        ks, vs = (t[k0:k1].float().repeat_interleave(groups, dim=1) for t in (k, v))
        scores = torch.einsum("qhd,khd->hqk", qs, ks) * scale
        shift = (k1 - k0) - (q1 - q0)
        rows = torch.arange(q1 - q0, device=q.device)[:, None] + shift
        cols = torch.arange(k1 - k0, device=q.device)[None, :]
        visible = torch.ones_like(scores[0], dtype=torch.bool)
        if left >= 0:
            visible &= cols >= rows - left
        if right >= 0:
            visible &= cols <= rows + right
        probs = torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1).nan_to_num(0.0)
        if dropout > 0:
            probs = torch.nn.functional.dropout(probs, p=dropout)
        outputs.append(torch.einsum("hqk,khd->qhd", probs, vs))
    return torch.cat(outputs).to(q.dtype)


class EmulatedFlashAttnVarlen:
    """flash-attn 2.x's `flash_attn_varlen_func` (see the module docstring)."""

    runs_on_cpu = True

    def __init__(self, allow_float32: bool = False):
        self.dtypes = (*HALF, torch.float32) if allow_float32 else HALF

    def __call__(
        self,
        q,
        k,
        v,
        cu_seqlens_q,
        cu_seqlens_k,
        max_seqlen_q,
        max_seqlen_k,
        dropout_p=0.0,
        softmax_scale=None,
        causal=False,
        window_size=(-1, -1),
        softcap=0.0,
        alibi_slopes=None,
        deterministic=False,
        return_attn_probs=False,
        block_table=None,
    ):
        if softcap or alibi_slopes is not None or return_attn_probs or block_table is not None:
            raise NotImplementedError(
                "the emulation covers what RexBERT calls: no softcap, ALiBi, probs or paging"
            )
        offsets_q, offsets_k = check_inputs(
            q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, self.dtypes
        )
        left, right = window_size
        right = 0 if causal else right
        scale = softmax_scale if softmax_scale is not None else 1 / math.sqrt(q.shape[-1])
        return attend(q, k, v, offsets_q, offsets_k, scale, left, right, dropout_p)


class EmulatedTorchVarlen:
    """PyTorch's `varlen_attn`: `with_window=True` is the 2.12+ signature (`window_size`, `scale`,
    `enable_gqa`, ...), False the earlier one (`is_causal`, no window). No dropout in either."""

    runs_on_cpu = True

    def __init__(self, with_window: bool = True, allow_float32: bool = False):
        self.with_window = with_window
        self.dtypes = (*HALF, torch.float32) if allow_float32 else HALF
        self.__signature__ = _signature(_varlen_with_window if with_window else _varlen_without_window)

    def __call__(self, query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, **options):
        allowed = set(self.__signature__.parameters)
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise TypeError(f"varlen_attn() got an unexpected keyword argument {unknown[0]!r}")
        window = tuple(options.get("window_size", (-1, -1)))
        if options.get("is_causal") or window == (-1, 0):
            window = (window[0], 0)
        if not options.get("enable_gqa", False) and query.shape[1] != key.shape[1]:
            raise ValueError(
                f"Expect query and key/value to have the same number of heads but got Hq={query.shape[1]} "
                f"and Hkv={key.shape[1]}. Try setting enable_gqa=True for GQA."
            )
        _require(cu_seq_k is not None, "the emulation needs cu_seq_k")
        offsets_q, offsets_k = check_inputs(
            query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, self.dtypes, cu_k_name="cu_seqlens_k"
        )
        scale = options.get("scale") or 1 / math.sqrt(query.shape[-1])
        out = attend(query, key, value, offsets_q, offsets_k, scale, window[0], window[1], 0.0)
        return (out, None) if options.get("return_aux") is not None else out


def _varlen_with_window(
    query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None, scale=None,
    window_size=(-1, -1), enable_gqa=False, seqused_k=None, block_table=None, num_splits=None,
): ...  # fmt: skip


def _varlen_without_window(
    query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, is_causal=False, return_aux=None
): ...


def _signature(function):
    import inspect

    return inspect.signature(function)


flash_attn_varlen_func = EmulatedFlashAttnVarlen()
varlen_attn = EmulatedTorchVarlen(with_window=True)
varlen_attn_without_window = EmulatedTorchVarlen(with_window=False)


@contextlib.contextmanager
def installed(
    flash: EmulatedFlashAttnVarlen | None = flash_attn_varlen_func,
    torch_varlen: EmulatedTorchVarlen | None = varlen_attn,
) -> Iterator[None]:
    """Put the emulations where `modeling_rexbert.attention` looks for the kernels, for the `with` block."""
    from . import attention

    saved = attention.flash_attn_varlen_func, attention.varlen_attn
    attention.flash_attn_varlen_func, attention.varlen_attn = flash, torch_varlen
    try:
        yield
    finally:
        attention.flash_attn_varlen_func, attention.varlen_attn = saved
