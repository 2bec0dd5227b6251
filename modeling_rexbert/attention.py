# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""Attention backends over a packed batch of documents (`(tokens, heads, head_dim)` queries/keys/values).

Every backend computes the same thing: each token attends to the tokens of its own document, and in local
(sliding-window) layers only to those whose position differs from its own by at most `window`.

- `"flash_attention_2"`: flash-attn's varlen kernel (GPU, fp16/bf16), which takes the packed layout as is.
- `"varlen_attn"`: the same FlashAttention-2 varlen kernels as shipped inside PyTorch
  (`torch.nn.attention.varlen.varlen_attn`, CUDA, fp16/bf16): no flash-attn package to build. Where the
  installed torch takes a `window_size` (2.12 and later) the local layers use it; on an older torch they
  fall back to the sdpa block path below (same result, slower). No attention dropout.
- `"sdpa"` (default): `torch.nn.functional.scaled_dot_product_attention`. Global layers batch documents
  of similar length into one call each (padded to the group's longest, at most 5% padding, key mask).
  Local layers take whichever attends to fewer keys: the same document groups with a band mask (documents
  shorter than about three windows, as a catalogue's product texts are), or blocks of `window` queries,
  each seeing its own keys plus one `window`-wide halo on each side, with a small boolean mask for document
  boundaries and the exact window (about `3 * window` keys per token whatever the document length, one
  call per layer whatever the number of documents).

The sdpa and eager windows compare position ids; flash-attn's compares offsets in the stream. The two agree
whenever positions within a document are consecutive (padded, packed or plain batches).
- `"eager"`: a readable per-document reference (explicit softmax), used to check the others.

On a CPU the `"sdpa"` backend hands float32 inference calls to this package's packed AVX-512 kernel once
`cpu_attention.load_packed_cpu_attention()` has built it (this module's `packed_cpu_attention`; about 3.5x
SDPA's rate on catalogue texts), for the calls it computes exactly (`_cpu_kernel_applies`).

The two GPU kernels are this module's `flash_attn_varlen_func` and `varlen_attn` attributes, read at every
call; `modeling_rexbert.emulated_kernels.installed()` puts CPU emulations with the kernels' contracts in
their place, so both paths run forward and backward in CI. What a kernel accepts (CUDA tensors in float16 or
bfloat16 unless it says otherwise through `runs_on_cpu` / `dtypes`) and whether it takes a `window_size`
are read from the kernel itself.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F

try:
    from flash_attn import flash_attn_varlen_func
except ImportError:  # flash-attn is an optional GPU extra
    flash_attn_varlen_func = None

try:
    from torch.nn.attention.varlen import varlen_attn
except ImportError:  # torch before 2.10
    varlen_attn = None
HALF_PRECISION = (torch.float16, torch.bfloat16)
packed_cpu_attention = None  # torch.ops.rexbert.packed_attention once cpu_attention.py has built it


def takes_window(kernel) -> bool:
    """Whether a `varlen_attn` kernel has `window_size` (torch 2.12 and later)."""
    return kernel is not None and "window_size" in inspect.signature(kernel).parameters


VARLEN_HAS_WINDOW = takes_window(varlen_attn)

from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .unpadding import PackedBatch, take_rows

__all__ = [
    "HALF_PRECISION",
    "VARLEN_HAS_WINDOW",
    "attention_forward",
    "eager_attention",
    "flash_varlen_attention",
    "sdpa_attention",
    "takes_window",
    "torch_varlen_attention",
]


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
    if implementation == "varlen_attn":
        return torch_varlen_attention(query, key, value, batch, window, dropout)
    if implementation == "eager":
        return eager_attention(query, key, value, batch, window, dropout)
    return sdpa_attention(query, key, value, batch, window, dropout)


def _check_kernel(name: str, kernel, query: torch.Tensor, missing: str) -> None:
    """A readable error before a kernel's own: present, and given what it accepts (CUDA, half precision)."""
    if kernel is None:
        raise ImportError(f"attn_implementation={name!r} needs {missing}")
    if not (query.is_cuda or getattr(kernel, "runs_on_cpu", False)):
        raise ValueError(f"attn_implementation={name!r} runs on CUDA, got tensors on {query.device}")
    if query.dtype not in getattr(kernel, "dtypes", HALF_PRECISION):
        raise ValueError(f"attn_implementation={name!r} needs float16 or bfloat16 weights, got {query.dtype}")


def flash_varlen_attention(query, key, value, batch, window, dropout, deterministic):
    """flash-attn's varlen kernel; its window `(left, right)` is inclusive, matching `|q - k| <= window`."""
    kernel = flash_attn_varlen_func
    _check_kernel("flash_attention_2", kernel, query, "the flash-attn package (GPU extra)")
    return kernel(
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


def torch_varlen_attention(query, key, value, batch, window, dropout):
    """PyTorch's own FlashAttention-2 varlen kernel (see the module docstring)."""
    kernel = varlen_attn
    _check_kernel("varlen_attn", kernel, query, "torch >= 2.10 (torch.nn.attention.varlen)")
    if dropout > 0:
        raise ValueError(
            "attn_implementation='varlen_attn' has no attention dropout; set attention_dropout=0"
        )
    if window is not None and not takes_window(kernel):  # no sliding window in this torch: exact fallback
        return _sdpa_local_blocks(query, key, value, batch, window, dropout)
    options = {"window_size": (window, window)} if window is not None else {}
    cu = batch.cu_seqlens.to(query.device)
    return kernel(query, key, value, cu, cu, batch.max_seqlen, batch.max_seqlen, **options)


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
    """SDPA on the packed stream: whole documents for global layers; for local layers, whole documents with
    a band mask when that attends to fewer keys than halo blocks (documents shorter than about three
    windows: a catalogue's titles and descriptions), else halo blocks. Float32 inference on a CPU takes the
    packed CPU kernel instead once it is built."""
    if packed_cpu_attention is not None and _cpu_kernel_applies(query, key, value, batch, window, dropout):
        return packed_cpu_attention(query, key, value, batch.cu_seqlens, -1 if window is None else window)
    if window is None or batch.max_position <= window:  # the window covers every document entirely
        return _sdpa_per_length_group(query, key, value, batch, dropout)
    groups = _document_groups(batch)[0]
    if sum(g.count * g.longest**2 for g in groups) <= 3 * window * batch.num_tokens:
        return _sdpa_per_length_group(query, key, value, batch, dropout, window)
    return _sdpa_local_blocks(query, key, value, batch, window, dropout)


def _cpu_kernel_applies(query, key, value, batch, window, dropout) -> bool:
    """What the CPU kernel computes exactly: a forward pass (no dropout, no gradient wanted) on plain float32
    CPU tensors of head_dim 64, outside compilers and exporters (they trace SDPA), and in local layers only
    where positions run 0, 1, 2... inside each document, since its window counts offsets in the stream."""
    tensors = (query, key, value)
    if dropout > 0 or query.shape[-1] != 64 or any(type(t) is not torch.Tensor for t in tensors):
        return False  # subclasses are fake, functional or distributed tensors
    if query.device.type != "cpu" or any(t.dtype != torch.float32 for t in tensors):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    if torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing():
        return False
    return window is None or _positions_are_offsets(batch)


def _positions_are_offsets(batch: PackedBatch) -> bool:
    """Whether every document's positions are consecutive (0, 1, 2... from its first). Cached per batch."""
    if "positions_are_offsets" not in batch.cache:
        starts = batch.cu_seqlens.long()[batch.doc_ids]
        offsets = torch.arange(batch.num_tokens, device=starts.device) - starts
        batch.cache["positions_are_offsets"] = bool(
            (batch.positions - batch.positions[starts] == offsets).all()
        )
    return batch.cache["positions_are_offsets"]


def _sdpa_per_length_group(query, key, value, batch, dropout, window=None):
    """Full attention inside each document (within `window` positions when given, by a band mask):
    documents of similar length are batched into one SDPA call (padded to the group's longest, with a key
    mask), since one batched call is far cheaper on CPU than one call per document. All groups are laid out
    in one gathered tensor, so each of query, key, value and the output is moved once per layer."""
    groups, slot_tokens, token_slots = _document_groups(batch)
    masks = [g.key_mask for g in groups] if window is None else _band_masks(batch, window)
    if slot_tokens is not None:
        query, key, value = (take_rows(t, slot_tokens, token_slots) for t in (query, key, value))
    # `split` rather than slicing: a slice's backward writes into a zero tensor of the full stream, once per
    # group and tensor, while `split`'s backward is a single concatenation.
    sizes = [group.count * group.longest for group in groups]
    outputs = []
    for group, mask, q, k, v in zip(groups, masks, *(t.split(sizes) for t in (query, key, value))):
        q, k, v = (t.view(group.count, group.longest, *t.shape[1:]).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        outputs.append(attended.transpose(1, 2).reshape(-1, *query.shape[1:]))
    slots = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    return slots if token_slots is None else take_rows(slots, token_slots)


@dataclass
class DocumentGroup:
    """Documents attended in one SDPA call, padded to a `(docs, longest)` grid."""

    count: int
    longest: int
    key_mask: torch.Tensor | None  # (docs, 1, 1, longest) True on real slots; None when all are real


def _document_groups(batch: PackedBatch, max_padding: float = 0.05):
    """Group documents (longest first) so that padding each group to its longest adds at most
    `max_padding` of its real tokens, and lay the groups' grids out one after the other.

    Padded slots cost full attention work, while an extra SDPA call costs little once documents hold a few
    dozen tokens: on the ragged benchmark batch (32 documents of 32..512 tokens, 17m shapes) 5% (12 groups)
    ran a global layer about 15% faster, forward and backward, than 15% (7 groups).

    Returns the groups, `slot_tokens` (the token held by each slot; padding slots repeat token 0) and
    `token_slots` (the slot of each token); both None when the layout is the stream itself. Cached per batch.
    """
    if "document_groups" in batch.cache:
        return batch.cache["document_groups"]
    bounds = batch.doc_bounds
    members: list[list[int]] = []
    for doc in sorted(range(len(bounds)), key=lambda d: bounds[d][0] - bounds[d][1]):
        length = bounds[doc][1] - bounds[doc][0]
        if members:
            group = members[-1]
            longest = bounds[group[0]][1] - bounds[group[0]][0]
            real = sum(bounds[d][1] - bounds[d][0] for d in group) + length
            if (len(group) + 1) * longest <= (1 + max_padding) * real:
                group.append(doc)
                continue
        members.append([doc])

    device = batch.positions.device
    groups, slot_tokens, real_slots = [], [], []
    for group in sorted(members, key=lambda g: bounds[min(g)][0]):
        group.sort()
        starts = torch.tensor([bounds[d][0] for d in group], device=device)
        lengths = torch.tensor([bounds[d][1] - bounds[d][0] for d in group], device=device)
        longest = int(lengths.max())
        offsets = torch.arange(longest, device=device)
        real = offsets[None, :] < lengths[:, None]
        key_mask = None if bool(real.all()) else real.view(len(group), 1, 1, longest)
        groups.append(DocumentGroup(len(group), longest, key_mask))
        slot_tokens.append(torch.where(real, starts[:, None] + offsets[None, :], 0).reshape(-1))
        real_slots.append(real.reshape(-1))
    slot_tokens, real_slots = torch.cat(slot_tokens), torch.cat(real_slots)
    if slot_tokens.numel() == batch.num_tokens and bool(
        (slot_tokens == torch.arange(batch.num_tokens, device=device)).all()
    ):
        result = (groups, None, None)
    else:
        token_slots = torch.empty(batch.num_tokens, dtype=torch.long, device=device)
        token_slots[slot_tokens[real_slots]] = real_slots.nonzero().squeeze(1)
        result = (groups, slot_tokens, token_slots)
    batch.cache["document_groups"] = result
    return result


def _band_masks(batch: PackedBatch, window: int) -> list[torch.Tensor]:
    """Per document group, boolean `(docs, 1, longest, longest)`: a real key whose position differs from the
    query's by at most `window` (padding query rows see their own slot, so none is fully masked). Cached."""
    key = ("band_masks", window)
    if key not in batch.cache:
        groups, slot_tokens, _ = _document_groups(batch)
        positions = batch.positions if slot_tokens is None else batch.positions[slot_tokens]
        masks = []
        for group, slots in zip(groups, positions.split([g.count * g.longest for g in groups])):
            slots = slots.view(group.count, group.longest)
            band = (slots[:, :, None] - slots[:, None, :]).abs() <= window
            if group.key_mask is not None:
                own = torch.eye(group.longest, dtype=torch.bool, device=band.device)
                band = (band & group.key_mask.view(group.count, 1, group.longest)) | own
            masks.append(band.unsqueeze(1))
        batch.cache[key] = masks
    return batch.cache[key]


def _sdpa_local_blocks(query, key, value, batch, window, dropout):
    """Sliding-window attention in blocks of `window` queries, each seeing `window` keys more on each side."""
    tokens, heads, dim = query.shape
    block = max(window, 1)
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


def _varlen_attn_elsewhere(*args, **kwargs):
    raise ValueError(
        "attn_implementation='varlen_attn' is RexBERT's packed attention on torch.nn.attention.varlen; "
        "this model does not support it"
    )


# transformers accepts an `attn_implementation` only when its attention registry knows the name. RexBERT
# dispatches by name itself (`attention_forward`); the function registered for other models only says so.
if "varlen_attn" not in ALL_ATTENTION_FUNCTIONS.valid_keys():
    ALL_ATTENTION_FUNCTIONS.register("varlen_attn", _varlen_attn_elsewhere)
