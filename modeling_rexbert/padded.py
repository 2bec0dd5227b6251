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

It keeps RexBERT's semantics: a token attends to the real tokens of its own document (a row may pack several,
position ids restarting at 0), local layers to those within `local_attention // 2` positions. Masks follow
ModernBERT per backend, down to padded queries that see no real key (a padded position further than the window
from the last real token): sdpa gets a boolean mask (such a row attends to nothing), eager an additive
`finfo.min` mask (such a row averages every key). The losses over labels on padding therefore equal
ModernBERT's on the same backend exactly.

Hidden states, logits and per-token outputs are returned as zeros at padding positions, in both paths. This is
what ModernBERT itself returns with flash-attention (it unpads and re-pads with zeros); with sdpa and eager it
returns whatever its padded queries computed, which differs between those two backends.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .rotary import rotary_cos_sin

__all__ = ["GridOutput", "encode_grid", "labels_on_padding", "padded_path_wanted", "zero_padding"]


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


def zero_padding(tensor: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """`(batch, seq_len, ...)` with zeros where `attention_mask` is 0."""
    if attention_mask is None:
        return tensor
    keep = attention_mask.to(device=tensor.device, dtype=torch.bool)
    return tensor * keep.reshape(*keep.shape, *([1] * (tensor.dim() - 2))).to(tensor.dtype)


@dataclass
class GridOutput:
    last_hidden_state: torch.Tensor  # (batch, seq_len, hidden), padded positions as computed
    hidden_states: tuple[torch.Tensor, ...] | None  # each layer's input, then the final output
    attentions: tuple[torch.Tensor, ...] | None  # (batch, heads, seq_len, seq_len) per layer


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


def _attention(layer_attention, hidden, cos_sin, mask, eager: bool, training: bool):
    """One attention block on the grid; returns (output, weights or None)."""
    module = layer_attention
    batch, seq_len, _ = hidden.shape
    qkv = module.Wqkv(hidden).view(batch, seq_len, 3, module.num_heads, module.head_dim)
    query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq_len, head_dim)
    cos, sin = (t.view(batch, 1, seq_len, -1).float() for t in cos_sin)
    query, key = _rotate(query, cos, sin), _rotate(key, cos, sin)
    dropout = module.config.attention_dropout if training else 0.0
    if eager:
        additive = torch.zeros((), dtype=query.dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(query.dtype).min
        )
        scores = torch.matmul(query, key.transpose(2, 3)) * module.head_dim**-0.5 + additive
        weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        weights = F.dropout(weights, p=dropout, training=training)
        attended = torch.matmul(weights, value)
    else:
        weights = None
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout)
    attended = attended.transpose(1, 2).reshape(batch, seq_len, -1)
    return module.out_drop(module.Wo(attended)), weights


def encode_grid(
    model,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    output_hidden_states: bool,
    output_attentions: bool,
) -> GridOutput:
    """`model` (a `RexBertModel`) on the padded grid (see the module docstring)."""
    hidden = model.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds)
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
    for layer in model.layers:
        layer_inputs.append(hidden)
        attended, weights = _attention(
            layer.attn,
            layer.attn_norm(hidden),
            rotary[layer.attention_type],
            masks[layer.attention_type],
            eager,
            model.training,
        )
        hidden = hidden + attended
        hidden = hidden + layer.mlp(layer.mlp_norm(hidden))
        attentions.append(weights)
    hidden = model.final_norm(hidden)
    return GridOutput(
        last_hidden_state=hidden,
        hidden_states=(*layer_inputs, hidden) if output_hidden_states else None,
        attentions=tuple(attentions) if output_attentions else None,
    )
