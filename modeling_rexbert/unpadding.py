# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""Unpadding: the real tokens of a `(batch, seq_len)` grid as one packed stream of documents.

`pack_batch` reads the attention mask and position ids and returns a `PackedBatch`: which grid cells hold
real tokens, where each document starts (`cu_seqlens`, the varlen-attention convention) and each token's
RoPE position. The encoder runs on `(tokens, hidden)` tensors (`PackedBatch.unpad`) and scatters its
outputs back to the grid at the end (`PackedBatch.repad`), so padding costs nothing and documents packed
into one row never attend to each other.

(Not to be confused with document *packing* for training in `trainers.packing`, which writes several
documents into one row; this module only reads that layout.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch

from .configuration_rexbert import RexBertConfig

__all__ = ["PackedBatch", "check_model_inputs", "pack_batch", "take_rows"]


@dataclass
class PackedBatch:
    """The real tokens of a `(batch, seq_len)` grid, flattened and grouped into documents.

    A document is a run of real tokens in one row that starts at the row's first real token or at a token
    whose position id is 0 (the Hugging Face packing convention); documents never attend to each other.
    """

    batch_size: int
    seq_len: int
    indices: (
        torch.Tensor | None
    )  # (tokens,) flat grid index of each real token; None when there is no padding
    positions: torch.Tensor  # (tokens,) RoPE position of each real token
    cu_seqlens: torch.Tensor  # (documents + 1,) int32 cumulative document lengths
    max_seqlen: int  # longest document
    cache: dict = field(default_factory=dict, repr=False)  # per-forward masks/groupings built by the backends

    @property
    def num_tokens(self) -> int:
        return self.positions.shape[0]

    @cached_property
    def doc_ids(self) -> torch.Tensor:
        """(tokens,) index of the document each token belongs to."""
        lengths = self.cu_seqlens[1:] - self.cu_seqlens[:-1]
        return torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)

    @cached_property
    def doc_bounds(self) -> list[tuple[int, int]]:
        """(start, end) token offsets of every document, as Python ints."""
        cu = self.cu_seqlens.tolist()
        return list(zip(cu[:-1], cu[1:]))

    @cached_property
    def grid_runs(self) -> list[tuple[int, int, int]]:
        """Maximal runs of consecutive real tokens in the flat grid: (grid start, packed start, length)."""
        if self.indices is None:
            return [(0, 0, self.num_tokens)]
        breaks = (self.indices[1:] != self.indices[:-1] + 1).nonzero().squeeze(1) + 1
        packed_starts = [0, *breaks.tolist()]
        grid_starts = self.indices[packed_starts].tolist()
        ends = [*packed_starts[1:], self.num_tokens]
        return [(g, p, e - p) for g, p, e in zip(grid_starts, packed_starts, ends)]

    @cached_property
    def max_position(self) -> int:
        return int(self.positions.max())

    def unpad(self, grid: torch.Tensor) -> torch.Tensor:
        """`(batch, seq_len, *rest)` -> `(tokens, *rest)`: keep the real tokens."""
        flat = grid.reshape(self.batch_size * self.seq_len, *grid.shape[2:])
        return flat if self.indices is None else take_rows(flat, self.indices)

    def repad(self, packed: torch.Tensor) -> torch.Tensor:
        """`(tokens, *rest)` -> `(batch, seq_len, *rest)`, with zeros where the grid holds padding."""
        rest = packed.shape[1:]
        if self.indices is not None:
            grid = packed.new_zeros(self.batch_size * self.seq_len, *rest)
            if packed[0].numel() > 4096:  # wide rows: see take_rows
                grid[self.indices] = packed
                packed = grid
            else:
                packed = grid.index_copy(0, self.indices, packed)
        return packed.view(self.batch_size, self.seq_len, *rest)

    def packed_index_of(self, flat_positions: torch.Tensor) -> torch.Tensor:
        """Map flat grid indices (which must hold real tokens) to indices into the packed stream."""
        if self.indices is None:
            return flat_positions
        lookup = torch.full(
            (self.batch_size * self.seq_len,), -1, dtype=torch.long, device=self.indices.device
        )
        lookup[self.indices] = torch.arange(self.num_tokens, device=self.indices.device)
        packed = lookup[flat_positions]
        if (packed < 0).any():
            raise ValueError("labels are set on padding positions (attention_mask == 0); use -100 there")
        return packed


def check_model_inputs(
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    config: RexBertConfig,
) -> tuple[int, int]:
    """Validate the model inputs; return `(batch_size, seq_len)`. Raises ValueError/TypeError naming the issue."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise TypeError(f"input_ids must be an integer tensor, got dtype {input_ids.dtype}")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch_size, seq_len), got {tuple(input_ids.shape)}")
        shape = tuple(input_ids.shape)
    else:
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != config.hidden_size:
            raise ValueError(
                f"inputs_embeds must have shape (batch_size, seq_len, {config.hidden_size}), "
                f"got {tuple(inputs_embeds.shape)}"
            )
        shape = tuple(inputs_embeds.shape[:2])
    if 0 in shape:
        raise ValueError(f"empty batch: inputs have shape {shape}")
    if attention_mask is not None and tuple(attention_mask.shape) != shape:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} does not match input shape {shape}"
        )
    if position_ids is not None:
        if position_ids.dtype.is_floating_point or position_ids.dtype == torch.bool:
            raise TypeError(f"position_ids must be an integer tensor, got dtype {position_ids.dtype}")
        if (
            position_ids.dim() != 2
            or position_ids.shape[1] != shape[1]
            or position_ids.shape[0] not in (1, shape[0])
        ):
            raise ValueError(
                f"position_ids shape {tuple(position_ids.shape)} does not match input shape {shape}"
            )
    return shape


def pack_batch(
    batch_size: int,
    seq_len: int,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    max_positions: int,
    device: torch.device,
) -> PackedBatch:
    """Describe the real tokens of the grid as packed documents (see `PackedBatch`)."""
    keep = None
    if attention_mask is not None:
        keep = attention_mask.to(device=device, dtype=torch.bool).reshape(-1)
        if not keep.any():
            raise ValueError("attention_mask masks every token: nothing to encode")
        if keep.all():
            keep = None
    indices = None if keep is None else keep.nonzero().squeeze(1)

    if position_ids is None:
        grid_positions = torch.arange(seq_len, device=device).expand(batch_size, seq_len)
    else:
        grid_positions = position_ids.to(device).expand(batch_size, seq_len)
    flat_positions = grid_positions.reshape(-1)
    positions = flat_positions if indices is None else flat_positions.index_select(0, indices)
    if position_ids is not None and positions.numel() and int(positions.min()) < 0:
        raise ValueError(f"position_ids must be >= 0, got {int(positions.min())}")

    rows = torch.arange(batch_size, device=device).repeat_interleave(seq_len)
    rows = rows if indices is None else rows.index_select(0, indices)
    starts = positions == 0
    starts[0] = True
    starts[1:] |= rows[1:] != rows[:-1]
    start_offsets = starts.nonzero().squeeze(1)
    cu_seqlens = torch.cat([start_offsets, start_offsets.new_tensor([positions.numel()])]).to(torch.int32)
    max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
    return PackedBatch(batch_size, seq_len, indices, positions, cu_seqlens, max_seqlen)


def take_rows(t: torch.Tensor, index: torch.Tensor, inverse: torch.Tensor | None = None) -> torch.Tensor:
    """`t[index]` along dim 0, fast on CPU in both directions.

    `[]` is used for very wide rows (vocabulary logits), where it beats `index_select` several times. For
    narrow rows the gather is `index_select`, and under autograd its backward is a copy or a gather
    (`_TakeRows`) instead of torch's `index_add`, which costs more than the layer matmuls on CPU.
    `inverse` is needed when `index` repeats rows: for each row of `t`, the one output row whose gradient
    it receives (the other copies must get zero gradient, as padding slots do).
    """
    if t[0].numel() > 4096:
        return t[index]
    if torch.is_grad_enabled() and t.requires_grad:
        return _TakeRows.apply(t, index, inverse)
    return t.index_select(0, index)


class _TakeRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, index, inverse):
        ctx.save_for_backward(index, inverse)
        ctx.num_rows = t.shape[0]
        return t.index_select(0, index)

    @staticmethod
    def backward(ctx, grad):
        index, inverse = ctx.saved_tensors
        if inverse is not None:
            return grad.index_select(0, inverse), None, None
        grad_rows = grad.new_zeros(ctx.num_rows, *grad.shape[1:])
        return grad_rows.index_copy_(0, index, grad), None, None
