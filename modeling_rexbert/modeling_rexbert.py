# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""RexBERT: the ModernBERT encoder, computed on real tokens only.

The module and parameter names are exactly those of transformers' ModernBERT classes, so their checkpoints
load unchanged. What differs is the execution: the batch is flattened to its real tokens (padding removed,
documents packed back to back with cumulative sequence lengths) before the first layer, every layer works
on that `(tokens, hidden)` stream, and outputs are scattered back to the `(batch, seq_len, ...)` grid at
the end. Padding costs nothing, documents packed into one row never see each other, and the MLM decoder
only runs on real (or, with `sparse_prediction`, on labelled) tokens.

This module holds the base class and the encoder; the task heads, each reusing the encoder, are in
`heads.py`. The pieces they use live in their own modules: `unpadding.py` (the packed batch: pack, unpad,
repad), `rotary.py`, `attention.py` (the attention backends), `layers.py` (embeddings, MLP, attention and
encoder layers), `mlm_decoder.py` (the MLM decoder fused with its cross-entropy) and `padded.py`
(ModernBERT's padded computation, taken when compiling, exporting, returning attention maps or scoring
labels on padding).

Auto classes: every model class registers itself for its Auto class where it is defined
(`register_for_auto_class`); `auto_classes()` reads those registrations, so the package's registration
with transformers (`__init__.py`), the `auto_map` written into saved configs and the remote-code files that
travel with a checkpoint all come from one place, and a new head needs only its class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.dynamic_module_utils import custom_object_save
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_rexbert import RexBertConfig
from .layers import (
    RexBertAttention,
    RexBertEmbeddings,
    RexBertEncoderLayer,
    RexBertMLP,
    RexBertPredictionHead,
)
from .padded import encode_grid, padded_path_wanted
from .rotary import rotary_cos_sin
from .unpadding import PackedBatch, check_model_inputs, pack_batch

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
    # A head's output layers and their initialisation ("residual": like the layers writing into the
    # residual stream; "classifier": hidden_size**-0.5), read by `_init_weights`.
    _output_layers: dict[str, str] = {}

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
        elif isinstance(module, RexBertPreTrainedModel):  # a head's own output layers (`_output_layers`)
            stds = {"residual": std_out, "classifier": config.hidden_size**-0.5}
            for name, kind in module._output_layers.items():
                trunc_normal(getattr(module, name), stds[kind])

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as usual, with an `auto_map` naming every RexBERT Auto class and the code of every class next
        to the weights, so the saved folder loads with `trust_remote_code=True` under any head (e.g. a
        masked-LM checkpoint opened with `AutoModelForSequenceClassification`)."""
        self.config.auto_map = auto_map()
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            for model_class in auto_classes().values():  # each class's module and its relative imports
                custom_object_save(model_class, save_directory)
        return result


@dataclass
class EncodedBatch:
    """Encoder output on the packed stream, before repadding."""

    last_hidden_state: torch.Tensor  # (tokens, hidden)
    batch: PackedBatch
    hidden_states: tuple[torch.Tensor, ...] | None  # each layer's input, then the final output; packed


class RexBertModel(RexBertPreTrainedModel):
    """The bare encoder; returns `BaseModelOutput` with `(batch, seq_len, hidden)` states.

    Padding positions hold zeros, on the default (unpadded) path and on the padded one (`padded.py`: attention
    maps, compile, export) alike, as ModernBERT's flash-attention backend returns.
    """

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
        batch_size, seq_len = check_model_inputs(
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
            hidden_states, _ = layer(hidden_states, rotary[layer.attention_type], batch)
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
        inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
        output_hidden_states = wants_hidden_states(self, output_hidden_states)
        output_attentions = wants_attentions(self, output_attentions)
        if padded_path_wanted(output_attentions):
            return self.encode_grid(*inputs, output_hidden_states, output_attentions)
        return _base_output(self.encode(*inputs, output_hidden_states))

    def encode_grid(
        self,
        input_ids,
        attention_mask,
        position_ids,
        inputs_embeds,
        output_hidden_states,
        output_attentions,
        zeros_at_padding: bool = True,
    ) -> BaseModelOutput:
        """The padded path (`padded.py`): ModernBERT's computation on the grid, zeros at padding positions
        (`zeros_at_padding=False`: what the padded queries computed, for labels on padding)."""
        if not torch.compiler.is_compiling():  # shape checks only; tracing sees symbolic shapes
            check_model_inputs(input_ids, inputs_embeds, attention_mask, position_ids, self.config)
        inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
        wanted = (bool(output_hidden_states), bool(output_attentions), zeros_at_padding)
        return encode_grid(self, *inputs, *wanted)


def wants_hidden_states(model: PreTrainedModel, requested: bool | None) -> bool:
    return bool(requested if requested is not None else model.config.output_hidden_states)


def wants_attentions(model: PreTrainedModel, requested: bool | None) -> bool:
    return bool(requested if requested is not None else model.config.output_attentions)


def repad_hidden_states(encoded: EncodedBatch) -> tuple[torch.Tensor, ...] | None:
    if encoded.hidden_states is None:
        return None
    return tuple(encoded.batch.repad(h) for h in encoded.hidden_states)


def _base_output(encoded: EncodedBatch) -> BaseModelOutput:
    return BaseModelOutput(
        last_hidden_state=encoded.batch.repad(encoded.last_hidden_state),
        hidden_states=repad_hidden_states(encoded),
    )


def check_labels_shape(labels: torch.Tensor | None, expected: tuple[int, ...], what: str) -> None:
    if labels is not None and tuple(labels.shape) != tuple(expected):
        raise ValueError(
            f"{what} shape {tuple(labels.shape)} does not match expected shape {tuple(expected)}"
        )


# --------------------------------------------------------------------------------------------------------
# Auto classes, read from the classes' own `register_for_auto_class` registrations.
# --------------------------------------------------------------------------------------------------------


def auto_classes() -> dict[str, type[RexBertPreTrainedModel]]:
    """Auto class name -> the RexBERT class registered for it (every loaded subclass that registered itself)."""
    found, pending = {}, list(RexBertPreTrainedModel.__subclasses__())
    while pending:
        model_class = pending.pop(0)
        pending.extend(model_class.__subclasses__())
        if model_class.__dict__.get("_auto_class"):
            found[model_class._auto_class] = model_class
    return dict(sorted(found.items(), key=lambda item: item[0] != "AutoModel"))


def auto_map() -> dict[str, str]:
    """The `auto_map` of a RexBERT checkpoint: the config and every registered class, as `module.Class`
    references into the remote-code files shipped with the checkpoint."""
    classes = {"AutoConfig": RexBertConfig, **auto_classes()}
    return {auto: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for auto, cls in classes.items()}


# `register_for_auto_class` also makes `save_pretrained` copy the class's file and its relative imports.
RexBertConfig.register_for_auto_class()
RexBertModel.register_for_auto_class("AutoModel")

__all__ = [
    "EncodedBatch",
    "RexBertModel",
    "RexBertPreTrainedModel",
    "auto_classes",
    "auto_map",
    "check_labels_shape",
    "repad_hidden_states",
    "wants_attentions",
    "wants_hidden_states",
]
