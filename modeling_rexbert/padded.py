# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""The padded path: the encoder on the `(batch, seq_len)` grid with attention masks, as transformers'
ModernBERT computes it, with no data-dependent Python control flow.

The default path (`unpadding.py`) removes padding first, which is what makes RexBERT fast, but its shapes
depend on the data (the number of real tokens), so compilers and exporters cannot trace it. This path runs
instead when:

- the model is being compiled, exported or traced (`torch.compile`, `torch.export`, ONNX export, fx, jit):
  one graph, any batch, symbolic shapes;
- attention maps are requested (`output_attentions=True`): they are computed the eager way, one
  `(batch, heads, seq_len, seq_len)` map per layer, zero where a key is masked;
- labels sit on padding positions (masked-LM and token classification): the loss is then ModernBERT's, over
  the logits the padded queries produce.

Attention runs eagerly when maps are requested or `config._attn_implementation` is "eager", through
`scaled_dot_product_attention` with a boolean mask otherwise (flash-attention and varlen kernels need the
unpadded layout, so they fall back to sdpa here). Compiling `RexBertModel`, `RexBertForMaskedLM` or a
classifier this way gives one graph with no break (`torch._dynamo.explain`; 21 breaks on the unpadded path).

It keeps RexBERT's semantics: a token attends to the real tokens of its own document (a row may pack several,
position ids restarting at 0), local layers to those within `local_attention // 2` positions. Masks follow
ModernBERT per backend, down to padded queries that see no real key (a padded position further than the window
from the last real token): sdpa gets a boolean mask (such a row attends to nothing), eager an additive
`finfo.min` mask (such a row averages every key). The losses over labels on padding therefore equal
ModernBERT's on the same backend exactly.

One rule for padding positions, on every path (default, padded, compiled, exported): every per-token output
is zero there (hidden states, masked-LM, token-classification and question-answering logits) and so is every
row of an attention map that belongs to a padding query. The default path never computes those positions;
this path zeroes them after the embeddings and after every layer (a real token never attends to padding, so
its values are unchanged), and the layer inputs returned are the tensors the next layer used, so gradients
with respect to `hidden_states` and `attentions` reach them. Eager, compiled and exported models therefore
agree at every position, as transformers' export tests require (ModernBERT's flash-attention backend returns
zeros at padding too; its sdpa and eager backends return what the padded queries computed). The one
exception is labels on padding positions: the loss is then ModernBERT's, over the values the padded queries
compute, and those values are returned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import BaseModelOutput

from .rotary import rotary_cos_sin

__all__ = [
    "GridBatch",
    "encode_grid",
    "grid_attention",
    "labels_on_padding",
    "padded_path_wanted",
    "zero_padding",
]


def _tracing() -> bool:
    """Whether a compiler, exporter or tracer is running the model (its shapes must not depend on values)."""
    compiler = torch.compiler
    if compiler.is_compiling() or getattr(compiler, "is_exporting", lambda: False)():
        return True
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    from torch.fx import _symbolic_trace

    return getattr(_symbolic_trace, "is_fx_symbolic_tracing", _symbolic_trace.is_fx_tracing)()


def padded_path_wanted(output_attentions: bool | None) -> bool:
    return bool(output_attentions) or _tracing()


def labels_on_padding(
    labels: torch.Tensor | None, attention_mask: torch.Tensor | None, ignore_index: int
) -> bool:
    """Whether any label sits on a padding position (an eager-mode check; it reads the values)."""
    if labels is None or attention_mask is None or labels.dim() != attention_mask.dim():
        return False
    return bool(((labels != ignore_index) & (attention_mask.to(labels.device) == 0)).any())


def zero_padding(tensor: torch.Tensor | None, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """`tensor` (`(batch, seq_len, ...)`) with zeros where `attention_mask` is 0 (the module's padding rule)."""
    if tensor is None or attention_mask is None:
        return tensor
    keep = attention_mask.to(device=tensor.device, dtype=torch.bool)
    keep = keep.view(*keep.shape, *([1] * (tensor.dim() - keep.dim())))
    return tensor.masked_fill(~keep, 0)


def _grid_positions(position_ids: torch.Tensor | None, batch: int, seq_len: int, device) -> torch.Tensor:
    if position_ids is None:
        return torch.arange(seq_len, device=device).expand(batch, seq_len)
    return position_ids.to(device).expand(batch, seq_len)


def _masks(model, attention_mask, positions: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean `(batch, 1, seq_len, seq_len)` masks per layer type, True where a query may attend to a key:
    keys that are real tokens of the query's document (a new document starts where the position is 0),
    within the window in local layers."""
    batch, seq_len = positions.shape
    if attention_mask is None:
        keys = torch.ones(batch, seq_len, dtype=torch.bool, device=positions.device)
    else:
        keys = attention_mask.to(device=positions.device, dtype=torch.bool)
    document = torch.cumsum((positions == 0).int(), dim=1)
    allowed = keys[:, None, :] & (document[:, :, None] == document[:, None, :])
    near = (positions[:, :, None] - positions[:, None, :]).abs() <= model.config.local_attention // 2
    return {"full_attention": allowed[:, None], "sliding_attention": (allowed & near)[:, None]}


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """ModernBERT's rotation in float32 on `(batch, heads, seq_len, head_dim)`, half-width tables."""
    half = x.shape[-1] // 2
    x32 = x.float()
    first, second = x32[..., :half], x32[..., half:]
    rotated = torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)
    return rotated.to(x.dtype)


@dataclass
class GridBatch:
    """What one layer needs to attend on the grid: its boolean mask and the backend (eager returns weights)."""

    mask: torch.Tensor  # (batch, 1, seq_len, seq_len), True where a query may attend to a key
    eager: bool
    padding_mask: torch.Tensor | None = None  # (batch, seq_len): where maps get zero rows (padding queries)


def grid_attention(module, hidden, cos_sin, grid: GridBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`RexBertAttention` on `(batch, seq_len, hidden)`; returns (output, weights if eager else None)."""
    batch, seq_len, _ = hidden.shape
    qkv = module.Wqkv(hidden).view(batch, seq_len, 3, module.num_heads, module.head_dim)
    query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq_len, head_dim)
    cos, sin = (t.view(batch, 1, seq_len, -1).float() for t in cos_sin)
    query, key = _rotate(query, cos, sin), _rotate(key, cos, sin)
    dropout = module.config.attention_dropout if module.training else 0.0
    if grid.eager:
        additive = torch.zeros((), dtype=query.dtype, device=grid.mask.device).masked_fill(
            ~grid.mask, torch.finfo(query.dtype).min
        )
        scores = torch.matmul(query, key.transpose(2, 3)) * module.head_dim**-0.5 + additive
        weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        weights = F.dropout(weights, p=dropout, training=module.training)
        weights = _zero_padding_queries(weights, grid.padding_mask)  # the map returned is the one used
        attended = torch.matmul(weights, value)
    else:
        weights = None
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=grid.mask, dropout_p=dropout)
    attended = attended.transpose(1, 2).reshape(batch, seq_len, -1)
    return module.out_drop(module.Wo(attended)), weights


def _zero_padding_queries(weights: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """`(batch, heads, queries, keys)` maps with zero rows for padding queries."""
    if attention_mask is None:
        return weights
    return zero_padding(weights.transpose(1, 2), attention_mask).transpose(1, 2)


def encode_grid(
    model,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    output_hidden_states: bool,
    output_attentions: bool,
    zeros_at_padding: bool = True,
) -> BaseModelOutput:
    """`model` (a `RexBertModel`) on the padded grid (see the module docstring); `zeros_at_padding=False`
    keeps what the padded queries compute (ModernBERT's values, for labels on padding)."""
    padding_mask = attention_mask if zeros_at_padding else None
    hidden = zero_padding(model.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds), padding_mask)
    batch, seq_len, _ = hidden.shape
    positions = _grid_positions(position_ids, batch, seq_len, hidden.device)
    masks = _masks(model, attention_mask, positions)
    flat_positions = positions.reshape(-1)
    rotary = {  # cast to the model's dtype first, as ModernBERT does, then rotated in float32
        layer_type: rotary_cos_sin(model.config, layer_type, flat_positions, hidden.dtype)
        for layer_type in set(model.config.layer_types)
    }
    eager = output_attentions or model.config._attn_implementation == "eager"
    layer_inputs, attentions = [], []
    for layer in model.layers:  # through the layer modules, so gradient checkpointing applies here too
        layer_inputs.append(hidden)
        grid = GridBatch(masks[layer.attention_type], eager, padding_mask)
        hidden, weights = layer(hidden, rotary[layer.attention_type], grid)
        hidden = zero_padding(hidden, padding_mask)
        attentions.append(weights)
    hidden = zero_padding(model.final_norm(hidden), padding_mask)
    return BaseModelOutput(
        last_hidden_state=hidden,
        hidden_states=(*layer_inputs, hidden) if output_hidden_states else None,
        attentions=tuple(attentions) if output_attentions else None,
    )
