# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""Rotary position embeddings, computed as transformers' ModernBERT does (separate RoPE settings for the
global and the local layers), applied to the two half-heads; or, where the query and key projection delivers
each rotary pair side by side (`pair_order`), as one complex multiply in place."""

from __future__ import annotations

from functools import cache

import torch
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

from .configuration_rexbert import RexBertConfig

__all__ = ["apply_rotary", "apply_rotary_to_pairs", "pair_order", "rotary_cos_sin"]


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


@cache
def pair_order(num_heads: int, head_dim: int) -> torch.Tensor:
    """The order of `Wqkv`'s output features that puts each query and key head's rotary pairs side by side:
    feature `i` and `i + head_dim // 2` of a head become neighbours `2i` and `2i + 1`; values keep theirs.

    Attention scores are dot products of a query and a key head, which a permutation applied to both leaves
    unchanged; values are not permuted, so the attention output is the same. (Cached: one tensor per shape,
    never an inference tensor, which a later training step could not save for its backward.)"""
    half = head_dim // 2
    with torch.inference_mode(False):  # a plain tensor even when first asked for under inference_mode
        within_head = torch.stack((torch.arange(half), torch.arange(half) + half), dim=1).reshape(-1)
        heads = torch.arange(2 * num_heads)[:, None] * head_dim  # the query heads, then the key heads
        query_key = (heads + within_head).reshape(-1)
        return torch.cat((query_key, torch.arange(2 * num_heads * head_dim, 3 * num_heads * head_dim)))


def apply_rotary_to_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """`apply_rotary` for `(tokens, ..., head_dim)` vectors laid out in `pair_order` (each pair side by side).

    A float32 tensor that needs no gradient is rotated in place, as complex numbers times `cos + i sin`: one
    pass over it. On the 17m encoder embedding catalogue products (2 threads, oneDNN linears) that made the
    whole encoder 1.05-1.35x faster than `apply_rotary`'s three passes into a new tensor (10 alternated
    rounds, 1,024 and 4,096 products; this machine's speed drifts between rounds). Other dtypes, gradients and
    compilers (which trace real arithmetic) get the rotation out of place, in float32, as ModernBERT computes
    it. Returns the rotated tensor (`x` itself when rotated in place)."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1] // 2,)
    cos, sin = cos.view(shape), sin.view(shape)
    in_place = (
        x.dtype == torch.float32
        and not (torch.is_grad_enabled() and x.requires_grad)
        and not torch.compiler.is_compiling()
        and x.stride(-1) == 1
        and x.storage_offset() % 2 == 0
        and all(stride % 2 == 0 for stride in x.stride()[:-1])
    )
    if in_place:
        torch.view_as_complex(x.unflatten(-1, (-1, 2))).mul_(torch.complex(cos.float(), sin.float()))
        return x
    even, odd = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1)
    return rotated.flatten(-2).to(x.dtype)
