"""Attention backends over a packed batch of documents (`(tokens, heads, head_dim)` queries/keys/values).

Every backend computes the same thing: each token attends to the tokens of its own document, and in local
(sliding-window) layers only to those whose position differs from its own by at most `window`.

- `"flash_attention_2"`: flash-attn's varlen kernel (GPU, fp16/bf16), which takes the packed layout as is.
- `"sdpa"` (default): `torch.nn.functional.scaled_dot_product_attention`. Global layers call it once per
  group of equally long documents (no padding, no mask). Local layers cut the stream into blocks of
  `window` queries; each block sees its own keys plus one `window`-wide halo on each side, with a small
  boolean mask for document boundaries and the exact window. Cost per token is about `3 * window` keys
  instead of the document length, and there is one call per layer whatever the number of documents.
- `"eager"`: a readable per-document reference (explicit softmax), used to check the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

try:
    from flash_attn import flash_attn_varlen_func
except ImportError:  # flash-attn is an optional GPU extra
    flash_attn_varlen_func = None

if TYPE_CHECKING:
    from .modeling_rexbert import PackedBatch


def attention_forward(
    implementation: str,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    batch: PackedBatch,
    window: int | None,
    dropout: float,
    deterministic: bool = False,
) -> torch.Tensor:
    """Dispatch on `config._attn_implementation`; returns `(tokens, heads, head_dim)`."""
    if implementation is not None and implementation.startswith("flash_attention"):
        return flash_varlen_attention(query, key, value, batch, window, dropout, deterministic)
    if implementation == "eager":
        return eager_attention(query, key, value, batch, window, dropout)
    return sdpa_attention(query, key, value, batch, window, dropout)


def flash_varlen_attention(query, key, value, batch, window, dropout, deterministic):
    """flash-attn's varlen kernel; its window `(left, right)` is inclusive, matching `|q - k| <= window`."""
    if flash_attn_varlen_func is None:
        raise ImportError("attn_implementation='flash_attention_2' needs the flash-attn package (GPU extra)")
    if query.dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"flash attention needs float16 or bfloat16 weights, got {query.dtype}")
    return flash_attn_varlen_func(
        query,
        key,
        value,
        cu_seqlens_q=batch.cu_seqlens,
        cu_seqlens_k=batch.cu_seqlens,
        max_seqlen_q=batch.max_seqlen,
        max_seqlen_k=batch.max_seqlen,
        dropout_p=dropout,
        causal=False,
        window_size=(window, window) if window is not None else (-1, -1),
        deterministic=deterministic,
    )


def eager_attention(query, key, value, batch, window, dropout):
    """Reference: per document, softmax(q k^T / sqrt(d) + window mask) v with the softmax in float32."""
    scale = query.shape[-1] ** -0.5
    outputs = []
    for start, end in batch.doc_bounds:
        q, k, v = (t[start:end].transpose(0, 1) for t in (query, key, value))  # (heads, length, head_dim)
        scores = torch.matmul(q, k.transpose(1, 2)) * scale
        if window is not None:
            positions = batch.positions[start:end]
            outside = (positions[:, None] - positions[None, :]).abs() > window
            scores = scores.masked_fill(outside, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        probs = F.dropout(probs, p=dropout, training=dropout > 0)
        outputs.append(torch.matmul(probs, v).transpose(0, 1))
    return torch.cat(outputs)


def sdpa_attention(query, key, value, batch, window, dropout):
    """SDPA on the packed stream: whole documents for global layers, halo blocks for local layers."""
    if window is None or batch.max_position <= window:  # the window covers every document entirely
        return _sdpa_per_length_group(query, key, value, batch, dropout)
    return _sdpa_local_blocks(query, key, value, batch, window, dropout)


def _sdpa_per_length_group(query, key, value, batch, dropout):
    """Full attention inside each document, one SDPA call per set of documents of equal length."""
    groups, restore = _length_groups(batch)
    outputs = []
    for index, count, length in groups:
        q, k, v = (_gather_docs(t, index, count, length) for t in (query, key, value))
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)  # (docs, heads, length, dim)
        outputs.append(attended.transpose(1, 2).reshape(count * length, *query.shape[1:]))
    out = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    return out if restore is None else out.index_select(0, restore)


def _gather_docs(t: torch.Tensor, index: torch.Tensor | slice, count: int, length: int) -> torch.Tensor:
    """`(tokens, heads, dim)` -> `(count, heads, length, dim)` for the documents selected by `index`."""
    return t[index].view(count, length, *t.shape[1:]).transpose(1, 2)


def _length_groups(batch: PackedBatch):
    """Group documents by length; returns `[(token index, count, length)]` and the permutation that restores
    stream order after concatenating the groups' outputs (None when the groups are already in order)."""
    cache = batch.cache
    if "length_groups" not in cache:
        by_length: dict[int, list[int]] = {}
        for start, end in batch.doc_bounds:
            by_length.setdefault(end - start, []).append(start)
        device = batch.positions.device
        groups, order = [], []
        for length, starts in by_length.items():
            first = starts[0]
            contiguous = starts == list(range(first, first + length * len(starts), length))
            if contiguous:
                index = slice(first, first + length * len(starts))
                order.append(torch.arange(index.start, index.stop, device=device))
            else:
                index = (torch.tensor(starts, device=device)[:, None] + torch.arange(length, device=device)).reshape(-1)
                order.append(index)
            groups.append((index, len(starts), length))
        order = torch.cat(order)
        in_order = bool((order == torch.arange(order.numel(), device=device)).all())
        cache["length_groups"] = (groups, None if in_order else torch.argsort(order))
    return cache["length_groups"]


def _sdpa_local_blocks(query, key, value, batch, window, dropout):
    """Sliding-window attention in blocks of `window` queries, each seeing a halo of `window` keys per side."""
    tokens, heads, dim = query.shape
    block = window
    num_blocks = -(-tokens // block)
    padded = num_blocks * block
    span = 3 * block
    mask = _local_block_mask(batch, window, block, num_blocks)  # (blocks, 1, block, span)

    q = F.pad(query, (0, 0, 0, 0, 0, padded - tokens)).view(num_blocks, block, heads, dim).transpose(1, 2)
    k, v = (
        F.pad(t, (0, 0, 0, 0, block, block + padded - tokens)).unfold(0, span, block).permute(0, 1, 3, 2)
        for t in (key, value)
    )  # (blocks, heads, span, dim)
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    return attended.transpose(1, 2).reshape(padded, heads, dim)[:tokens]


def _local_block_mask(batch: PackedBatch, window: int, block: int, num_blocks: int) -> torch.Tensor:
    """Boolean `(blocks, 1, block, 3 * block)`: same document and `|position difference| <= window`.
    Padding slots form their own pseudo-document so no query row is fully masked. Cached per batch."""
    cache = batch.cache
    key = ("local_mask", window, block)
    if key not in cache:
        tokens = batch.num_tokens
        padded = num_blocks * block
        tail = (block, block + padded - tokens)
        docs = F.pad(batch.doc_ids, tail, value=-1)
        positions = F.pad(batch.positions, tail, value=0)
        q_docs = docs[block : block + padded].view(num_blocks, block)
        q_pos = positions[block : block + padded].view(num_blocks, block)
        k_docs = docs.unfold(0, 3 * block, block)
        k_pos = positions.unfold(0, 3 * block, block)
        same_doc = q_docs[:, :, None] == k_docs[:, None, :]
        near = (q_pos[:, :, None] - k_pos[:, None, :]).abs() <= window
        cache[key] = (same_doc & near).unsqueeze(1)
    return cache[key]
