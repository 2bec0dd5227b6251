"""RexBERT: the ModernBERT encoder, computed on real tokens only.

The module and parameter names are exactly those of transformers' ModernBERT classes, so their checkpoints
load unchanged. What differs is the execution: the batch is flattened to its real tokens (padding removed,
documents packed back to back with cumulative sequence lengths) before the first layer, every layer works
on that `(tokens, hidden)` stream, and outputs are scattered back to the `(batch, seq_len, ...)` grid at
the end. Padding costs nothing, documents packed into one row never see each other, and the MLM decoder
only runs on real (or, with `sparse_prediction`, on labelled) tokens.

Reading order: input checks and the packed-batch description, rotary embeddings, the attention backends
(see `attention.py`), modules, the base model, then the task heads and their Auto registration. The MLM
decoder and its fused cross-entropy live in `mlm_decoder.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.loss.loss_utils import LOSS_MAPPING
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.utils.generic import can_return_tuple

from .attention import attention_forward, take_rows
from .configuration_rexbert import RexBertConfig
from .mlm_decoder import decode, decode_with_loss

# --------------------------------------------------------------------------------------------------------
# The packed batch: which grid cells hold real tokens, where each document starts, each token's position.
# --------------------------------------------------------------------------------------------------------


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


def _check_ids_and_mask(
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
    elif shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {shape[1]} exceeds max_position_embeddings={config.max_position_embeddings}"
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
    if position_ids is not None and positions.numel():
        low, high = int(positions.min()), int(positions.max())
        if low < 0 or high >= max_positions:
            raise ValueError(
                f"position_ids must lie in [0, max_position_embeddings={max_positions}), got [{low}, {high}]"
            )

    rows = torch.arange(batch_size, device=device).repeat_interleave(seq_len)
    rows = rows if indices is None else rows.index_select(0, indices)
    starts = positions == 0
    starts[0] = True
    starts[1:] |= rows[1:] != rows[:-1]
    start_offsets = starts.nonzero().squeeze(1)
    cu_seqlens = torch.cat([start_offsets, start_offsets.new_tensor([positions.numel()])]).to(torch.int32)
    max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
    return PackedBatch(batch_size, seq_len, indices, positions, cu_seqlens, max_seqlen)


# --------------------------------------------------------------------------------------------------------
# Rotary position embeddings (separate theta for global and local layers).
# --------------------------------------------------------------------------------------------------------


def rotary_cos_sin(
    config: RexBertConfig, layer_type: str, positions: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables `(tokens, head_dim // 2)` for one layer type, computed as ModernBERT does.

    ModernBERT's tables repeat the same angles for both halves of a head; one half is kept here. The inverse
    frequencies are recomputed on the CPU at each call (a few dozen numbers) instead of kept in a buffer, so
    models materialised from the meta device need no special re-initialisation.
    """
    rope = config.rope_parameters[layer_type]
    head_dim = config.hidden_size // config.num_attention_heads
    if rope.get("rope_type", "default") == "default":
        inv_freq = 1.0 / (rope["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
        scaling = 1.0
    else:
        inv_freq, scaling = ROPE_INIT_FUNCTIONS[rope["rope_type"]](config, None, layer_type=layer_type)
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
    half = x.shape[-1] // 2
    shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (half,)
    cos, sin = cos.view(shape), sin.view(shape)
    x32 = x.float()
    first, second = x32[..., :half], x32[..., half:]
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    out_first, out_second = out[..., :half], out[..., half:]
    torch.mul(first, cos, out=out_first).addcmul_(second, sin, value=-sign)
    torch.mul(second, cos, out=out_second).addcmul_(first, sin, value=sign)
    return out.to(x.dtype)


# --------------------------------------------------------------------------------------------------------
# Modules (names as in transformers' ModernBERT).
# --------------------------------------------------------------------------------------------------------


class RexBertEmbeddings(nn.Module):
    """Token embeddings followed by LayerNorm and dropout (no absolute position embeddings)."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.drop = nn.Dropout(config.embedding_dropout)

    def forward(
        self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        embeds = self.tok_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return self.drop(self.norm(embeds))


class RexBertMLP(nn.Module):
    """GeGLU feed-forward: `Wi` projects to twice the intermediate width, half gates the other half."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, int(config.intermediate_size) * 2, bias=config.mlp_bias)
        self.act = ACT2FN[config.hidden_activation]
        self.drop = nn.Dropout(config.mlp_dropout)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        value, gate = self.Wi(hidden_states).chunk(2, dim=-1)
        return self.Wo(self.drop(self.act(value) * gate))


class RexBertAttention(nn.Module):
    """Multi-head self-attention over a packed batch; local layers see `local_attention // 2` tokens each side."""

    def __init__(self, config: RexBertConfig, layer_idx: int):
        super().__init__()
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({config.hidden_size}) is not a multiple of num_attention_heads "
                f"({config.num_attention_heads})"
            )
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.window = (
            config.local_attention // 2 if config.layer_types[layer_idx] == "sliding_attention" else None
        )
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.out_drop = (
            nn.Dropout(config.attention_dropout) if config.attention_dropout > 0.0 else nn.Identity()
        )

    def forward(
        self, hidden_states: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor], batch: PackedBatch
    ) -> torch.Tensor:
        num_tokens = hidden_states.shape[0]
        qkv = self.Wqkv(hidden_states).view(num_tokens, 3, self.num_heads, self.head_dim)
        # `split` rather than indexing: its backward is one concatenation instead of two zero-filled copies.
        query_key, value = qkv.split((2, 1), dim=1)
        query, key = apply_rotary(query_key, *cos_sin).unbind(dim=1)
        value = value.squeeze(1)
        attended = attention_forward(
            self.config._attn_implementation,
            query,
            key,
            value,
            batch,
            window=self.window,
            dropout=self.config.attention_dropout if self.training else 0.0,
            deterministic=self.config.deterministic_flash_attn,
        )
        return self.out_drop(self.Wo(attended.reshape(num_tokens, -1)))


class RexBertEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)); layer 0 skips the attention norm
    because the embeddings are already normalised."""

    def __init__(self, config: RexBertConfig, layer_idx: int):
        super().__init__()
        self.attention_type = config.layer_types[layer_idx]
        if layer_idx == 0:
            self.attn_norm = nn.Identity()
        else:
            self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.attn = RexBertAttention(config, layer_idx)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = RexBertMLP(config)

    def forward(
        self, hidden_states: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor], batch: PackedBatch
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.attn(self.attn_norm(hidden_states), cos_sin, batch)
        return hidden_states + self.mlp(self.mlp_norm(hidden_states))


class RexBertPredictionHead(nn.Module):
    """dense -> activation -> LayerNorm, shared by the MLM and classification heads."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, config.classifier_bias)
        self.act = ACT2FN[config.classifier_activation]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(hidden_states)))


# --------------------------------------------------------------------------------------------------------
# Base classes and the encoder.
# --------------------------------------------------------------------------------------------------------


class RexBertPreTrainedModel(PreTrainedModel):
    """Weight initialisation, attention-backend flags and Auto-class bookkeeping shared by all RexBERT models."""

    config_class = RexBertConfig
    config: RexBertConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["RexBertEmbeddings", "RexBertEncoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = False
    _supports_attention_backend = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """ModernBERT's scheme: truncated normals, std 0.02 into the residual stream, scaled down by
        sqrt(2 * layers) out of it, hidden_size**-0.5 for classifiers; zero biases; unit LayerNorms."""
        super()._init_weights(module)
        config = self.config
        cutoff = config.initializer_cutoff_factor if config.initializer_cutoff_factor is not None else 3
        std_in = config.initializer_range
        std_out = config.initializer_range / math.sqrt(2.0 * config.num_hidden_layers)

        def trunc_normal(layer: nn.Module, std: float) -> None:
            init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-cutoff * std, b=cutoff * std)
            if isinstance(layer, nn.Linear) and layer.bias is not None:
                init.zeros_(layer.bias)

        if isinstance(module, RexBertEmbeddings):
            trunc_normal(module.tok_embeddings, std_in)
        elif isinstance(module, (RexBertMLP,)):
            trunc_normal(module.Wi, std_in)
            trunc_normal(module.Wo, std_out)
        elif isinstance(module, RexBertAttention):
            trunc_normal(module.Wqkv, std_in)
            trunc_normal(module.Wo, std_out)
        elif isinstance(module, RexBertPredictionHead):
            trunc_normal(module.dense, std_out)
        elif isinstance(module, RexBertForMaskedLM):
            trunc_normal(module.decoder, std_out)
        elif isinstance(module, _RexBertClassifierModel):
            trunc_normal(module.classifier, config.hidden_size**-0.5)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as usual, with an `auto_map` naming every RexBERT Auto class so the saved folder loads with
        `trust_remote_code=True` (e.g. a masked-LM checkpoint opened with `AutoModel`)."""
        self.config.auto_map = {"AutoConfig": "configuration_rexbert.RexBertConfig", **AUTO_MAP}
        return super().save_pretrained(save_directory, *args, **kwargs)


@dataclass
class EncodedBatch:
    """Encoder output on the packed stream, before repadding."""

    last_hidden_state: torch.Tensor  # (tokens, hidden)
    batch: PackedBatch
    hidden_states: tuple[torch.Tensor, ...] | None  # each layer's input, then the final output; packed


class RexBertModel(RexBertPreTrainedModel):
    """The bare encoder; returns `BaseModelOutput` with `(batch, seq_len, hidden)` states (zeros at padding)."""

    def __init__(self, config: RexBertConfig):
        super().__init__(config)
        self.embeddings = RexBertEmbeddings(config)
        self.layers = nn.ModuleList([RexBertEncoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.tok_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.tok_embeddings = value

    def encode(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> EncodedBatch:
        """Run the encoder on the real tokens only; the heads use this to skip padding entirely."""
        batch_size, seq_len = _check_ids_and_mask(
            input_ids, inputs_embeds, attention_mask, position_ids, self.config
        )
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        batch = pack_batch(
            batch_size, seq_len, attention_mask, position_ids, self.config.max_position_embeddings, device
        )
        if input_ids is not None:
            ids = batch.unpad(input_ids)
            if int(ids.max()) >= self.config.vocab_size or int(ids.min()) < 0:
                raise ValueError(
                    f"input_ids must lie in [0, vocab_size={self.config.vocab_size}), "
                    f"got [{int(ids.min())}, {int(ids.max())}]"
                )
            hidden_states = self.embeddings(input_ids=ids)
        else:
            hidden_states = self.embeddings(inputs_embeds=batch.unpad(inputs_embeds))

        rotary = {
            layer_type: rotary_cos_sin(self.config, layer_type, batch.positions, hidden_states.dtype)
            for layer_type in set(self.config.layer_types)
        }
        layer_inputs = []
        for layer in self.layers:
            layer_inputs.append(hidden_states)
            hidden_states = layer(hidden_states, rotary[layer.attention_type], batch)
        hidden_states = self.final_norm(hidden_states)
        # As ModernBERT: the input of every layer, then the final (normed) output.
        all_hidden = (*layer_inputs, hidden_states) if output_hidden_states else None
        return EncodedBatch(hidden_states, batch, all_hidden)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        """Encode `input_ids` (or `inputs_embeds`), `(batch, seq_len)`.

        attention_mask: 1 for real tokens, 0 for padding (any position of padding is allowed).
        position_ids: restart at 0 at each document start to pack several documents in one row.
        output_hidden_states: also return the embedding output and every layer's output (repadded).
        """
        encoded = self.encode(
            input_ids,
            attention_mask,
            position_ids,
            inputs_embeds,
            _wants_hidden_states(self, output_hidden_states),
        )
        _refuse_attentions(output_attentions)
        return _base_output(encoded)


def _wants_hidden_states(model: PreTrainedModel, requested: bool | None) -> bool:
    return bool(requested if requested is not None else model.config.output_hidden_states)


def _refuse_attentions(requested: bool | None) -> None:
    if requested:
        raise ValueError(
            "output_attentions is not supported: RexBERT attends within each packed document, so there is "
            "no (seq_len x seq_len) attention map per row"
        )


def _repad_hidden_states(encoded: EncodedBatch) -> tuple[torch.Tensor, ...] | None:
    if encoded.hidden_states is None:
        return None
    return tuple(encoded.batch.repad(h) for h in encoded.hidden_states)


def _base_output(encoded: EncodedBatch) -> BaseModelOutput:
    return BaseModelOutput(
        last_hidden_state=encoded.batch.repad(encoded.last_hidden_state),
        hidden_states=_repad_hidden_states(encoded),
    )


def _check_labels_shape(labels: torch.Tensor | None, expected: tuple[int, ...], what: str) -> None:
    if labels is not None and tuple(labels.shape) != tuple(expected):
        raise ValueError(
            f"{what} shape {tuple(labels.shape)} does not match expected shape {tuple(expected)}"
        )


# --------------------------------------------------------------------------------------------------------
# Masked language modelling.
# --------------------------------------------------------------------------------------------------------


class RexBertForMaskedLM(RexBertPreTrainedModel):
    """Encoder + prediction head + decoder tied to the token embeddings.

    Logits are computed for real tokens only and are zero at padding positions. With
    `config.sparse_prediction` and labels, only labelled positions reach the decoder and `logits` has shape
    `(num_labelled, vocab_size)` (ModernBERT's convention).
    """

    _tied_weights_keys = {"decoder.weight": "model.embeddings.tok_embeddings.weight"}

    def __init__(self, config: RexBertConfig):
        super().__init__(config)
        self.model = RexBertModel(config)
        self.head = RexBertPredictionHead(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.decoder

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.decoder = new_embeddings

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """labels: `(batch, seq_len)` token ids to predict, `sparse_pred_ignore_index` (-100) elsewhere."""
        _refuse_attentions(output_attentions)
        encoded = self.model.encode(
            input_ids,
            attention_mask,
            position_ids,
            inputs_embeds,
            _wants_hidden_states(self, output_hidden_states),
        )
        batch = encoded.batch
        _check_labels_shape(labels, (batch.batch_size, batch.seq_len), "labels")
        hidden = encoded.last_hidden_state
        if labels is None:
            logits = self._decode(self.head(hidden), batch)
            return MaskedLMOutput(logits=logits, hidden_states=_repad_hidden_states(encoded))

        flat_labels = labels.to(hidden.device).reshape(-1)
        labelled = (flat_labels != self.config.sparse_pred_ignore_index).nonzero().squeeze(1)  # grid indices
        packed_labelled = batch.packed_index_of(labelled)
        target = flat_labels[labelled]
        sparse = self.config.sparse_prediction
        # Sparse prediction: only labelled tokens reach the decoder; logits are (labelled, vocab).
        features = self.head(take_rows(hidden, packed_labelled) if sparse else hidden)
        if self._fused_loss_applies(target):
            logits, loss = decode_with_loss(
                features,
                self.decoder.weight,
                self.decoder.bias,
                target,
                batch=None if sparse else batch,
                feature_rows=None if sparse else packed_labelled,
                logit_rows=None if sparse else labelled,
                num_items_in_batch=kwargs.get("num_items_in_batch"),
            )
            logits = logits if sparse else logits.view(batch.batch_size, batch.seq_len, -1)
        else:
            logits = self._decode(features, None if sparse else batch)
            masked_logits = logits if sparse else take_rows(logits.view(-1, logits.shape[-1]), labelled)
            loss = self.loss_function(masked_logits, target, vocab_size=self.config.vocab_size, **kwargs)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=_repad_hidden_states(encoded))

    def _decode(self, features: torch.Tensor, batch: PackedBatch | None) -> torch.Tensor:
        """Decoder logits: `(rows, vocab)`, or with `batch` `(batch, seq_len, vocab)` with zeros at padding."""
        if type(self.decoder) is nn.Linear:
            logits = decode(features, self.decoder.weight, self.decoder.bias, batch)
        else:  # a wrapped decoder (e.g. by an adapter library): run it, then scatter
            logits = self.decoder(features)
            logits = logits if batch is None else batch.repad(logits)
        return logits if batch is None else logits.view(batch.batch_size, batch.seq_len, -1)

    def _fused_loss_applies(self, target: torch.Tensor) -> bool:
        """The fused decoder + cross-entropy (`mlm_decoder.decode_with_loss`) computes exactly what
        `self.decoder` + transformers' masked-LM loss would: a plain linear decoder, the default loss, and
        at least one labelled token (with none, the default loss returns NaN as ModernBERT's does)."""
        return (
            type(self.decoder) is nn.Linear
            and self.loss_function is LOSS_MAPPING["ForMaskedLM"]
            and target.numel() > 0
        )


# --------------------------------------------------------------------------------------------------------
# Classification heads: encoder + prediction head + dropout + classifier.
# --------------------------------------------------------------------------------------------------------


class _RexBertClassifierModel(RexBertPreTrainedModel):
    """Shared layout of the classification heads (`model`, `head`, `drop`, `classifier`)."""

    def __init__(self, config: RexBertConfig, num_outputs: int):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = RexBertModel(config)
        self.head = RexBertPredictionHead(config)
        self.drop = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, num_outputs)
        self.post_init()

    def _classify(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(self.head(hidden)))

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """`(batch, seq_len, hidden)` -> `(batch, hidden)`: the first real token ("cls") or the masked mean."""
        if self.config.classifier_pooling == "cls":
            if attention_mask is None:
                return hidden[:, 0]
            first = attention_mask.to(hidden.device).int().argmax(dim=-1)
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
        if attention_mask is None:
            return hidden.mean(dim=1)
        weights = attention_mask.to(device=hidden.device, dtype=hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)

    def _encode(
        self, input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, output_attentions
    ):
        _refuse_attentions(output_attentions)
        return self.model(
            input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )


class RexBertForSequenceClassification(_RexBertClassifierModel):
    """Pooled (`classifier_pooling`) sequence classification or regression."""

    def __init__(self, config: RexBertConfig):
        super().__init__(config, config.num_labels)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """labels: `(batch,)` class ids, or floats for regression / `(batch, num_labels)` multi-label targets."""
        outputs = self._encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        logits = self._classify(self._pool(outputs.last_hidden_state, attention_mask))
        loss = None if labels is None else self._loss(logits, labels.to(logits.device))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Pick regression / single-label / multi-label from `config.problem_type` or the labels, as BERT does."""
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(
                f"labels batch size {labels.shape[0]} does not match input batch size {logits.shape[0]}"
            )
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            if self.num_labels == 1:
                return MSELoss()(logits.squeeze(), labels.squeeze().to(logits.dtype))
            return MSELoss()(logits, labels.to(logits.dtype))
        if self.config.problem_type == "single_label_classification":
            return CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.view(-1))
        return BCEWithLogitsLoss()(logits, labels.to(logits.dtype))


class RexBertForTokenClassification(_RexBertClassifierModel):
    """Per-token classification (e.g. NER)."""

    def __init__(self, config: RexBertConfig):
        super().__init__(config, config.num_labels)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> TokenClassifierOutput:
        """labels: `(batch, seq_len)` class ids, -100 where no loss is wanted."""
        outputs = self._encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        logits = self._classify(outputs.last_hidden_state)
        _check_labels_shape(labels, logits.shape[:2], "labels")
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(logits.view(-1, self.num_labels), labels.to(logits.device).view(-1))
        return TokenClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


class RexBertForQuestionAnswering(_RexBertClassifierModel):
    """Extractive QA: start/end logits per token (the classifier has `num_labels` = 2 outputs)."""

    def __init__(self, config: RexBertConfig):
        super().__init__(config, config.num_labels)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> QuestionAnsweringModelOutput:
        """start_positions / end_positions: `(batch,)` answer span token indices."""
        outputs = self._encode(
            input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, output_attentions
        )
        start_logits, end_logits = self._classify(outputs.last_hidden_state).split(1, dim=-1)
        start_logits = start_logits.squeeze(-1).contiguous()
        end_logits = end_logits.squeeze(-1).contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = self.loss_function(start_logits, end_logits, start_positions, end_positions, **kwargs)
        return QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, hidden_states=outputs.hidden_states
        )


class RexBertForMultipleChoice(_RexBertClassifierModel):
    """Multiple choice: inputs `(batch, num_choices, seq_len)`, one score per choice."""

    def __init__(self, config: RexBertConfig):
        super().__init__(config, 1)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> MultipleChoiceModelOutput:
        """labels: `(batch,)` index of the correct choice."""
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is None or reference.dim() < 3:
            raise ValueError("multiple choice inputs must have shape (batch_size, num_choices, seq_len)")
        num_choices = reference.shape[1]

        def flatten(x: torch.Tensor | None, trailing: int) -> torch.Tensor | None:
            return None if x is None else x.reshape(-1, *x.shape[x.dim() - trailing :])

        attention_mask = flatten(attention_mask, 1)
        outputs = self._encode(
            flatten(input_ids, 1),
            attention_mask,
            flatten(position_ids, 1),
            flatten(inputs_embeds, 2),
            output_hidden_states,
            output_attentions,
        )
        logits = self._classify(self._pool(outputs.last_hidden_state, attention_mask)).view(-1, num_choices)
        loss = None if labels is None else CrossEntropyLoss()(logits, labels.to(logits.device))
        return MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


# --------------------------------------------------------------------------------------------------------
# Auto classes: entries written into saved configs so the folder loads with trust_remote_code=True.
# --------------------------------------------------------------------------------------------------------

AUTO_CLASSES = {
    "AutoModel": RexBertModel,
    "AutoModelForMaskedLM": RexBertForMaskedLM,
    "AutoModelForSequenceClassification": RexBertForSequenceClassification,
    "AutoModelForTokenClassification": RexBertForTokenClassification,
    "AutoModelForQuestionAnswering": RexBertForQuestionAnswering,
    "AutoModelForMultipleChoice": RexBertForMultipleChoice,
}
AUTO_MAP = {auto: f"modeling_rexbert.{cls.__name__}" for auto, cls in AUTO_CLASSES.items()}
for _auto_name, _model_class in AUTO_CLASSES.items():
    _model_class.register_for_auto_class(_auto_name)
