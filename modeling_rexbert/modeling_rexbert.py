# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""RexBERT: the ModernBERT encoder, computed on real tokens only.

The module and parameter names are exactly those of transformers' ModernBERT classes, so their checkpoints
load unchanged. What differs is the execution: the batch is flattened to its real tokens (padding removed,
documents packed back to back with cumulative sequence lengths) before the first layer, every layer works
on that `(tokens, hidden)` stream, and outputs are scattered back to the `(batch, seq_len, ...)` grid at
the end. Padding costs nothing, documents packed into one row never see each other, and the MLM decoder
only runs on real (or, with `sparse_prediction`, on labelled) tokens.

Reading order: the base class and the encoder, then the task heads and the Auto classes. The pieces they
use live in their own modules: `unpadding.py` (the packed batch: pack, unpad, repad), `rotary.py`,
`attention.py` (the attention backends), `layers.py` (embeddings, MLP, attention and encoder layers),
`mlm_decoder.py` (the MLM decoder fused with its cross-entropy) and `padded.py` (ModernBERT's padded
computation, taken when compiling, exporting, returning attention maps or scoring labels on padding). Every head computes its loss through
`self.loss_function` (transformers' loss for the task), so a custom loss set on the model is honoured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.loss.loss_utils import LOSS_MAPPING, fixed_cross_entropy
from transformers.modeling_outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from transformers.utils.generic import can_return_tuple

from .configuration_rexbert import RexBertConfig
from .layers import (
    RexBertAttention,
    RexBertEmbeddings,
    RexBertEncoderLayer,
    RexBertMLP,
    RexBertPredictionHead,
)
from .mlm_decoder import decode, decode_with_loss
from .padded import encode_grid, labels_on_padding, padded_path_wanted
from .rotary import rotary_cos_sin
from .unpadding import PackedBatch, check_model_inputs, pack_batch, take_rows

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
        self.config.auto_map = auto_map()
        return super().save_pretrained(save_directory, *args, **kwargs)


@dataclass
class EncodedBatch:
    """Encoder output on the packed stream, before repadding."""

    last_hidden_state: torch.Tensor  # (tokens, hidden)
    batch: PackedBatch
    hidden_states: tuple[torch.Tensor, ...] | None  # each layer's input, then the final output; packed


class RexBertModel(RexBertPreTrainedModel):
    """The bare encoder; returns `BaseModelOutput` with `(batch, seq_len, hidden)` states.

    Padding positions hold zeros on the default (unpadded) path, as ModernBERT's flash-attention backend
    returns, and what the padded queries computed on the padded path (`padded.py`: attention maps, compile,
    export), as its sdpa and eager backends return.
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
        output_hidden_states = _wants_hidden_states(self, output_hidden_states)
        output_attentions = _wants_attentions(self, output_attentions)
        if padded_path_wanted(output_attentions):
            return self.encode_grid(*inputs, output_hidden_states, output_attentions)
        return _base_output(self.encode(*inputs, output_hidden_states))

    def encode_grid(
        self, input_ids, attention_mask, position_ids, inputs_embeds, output_hidden_states, output_attentions
    ) -> BaseModelOutput:
        """The padded path (`padded.py`): ModernBERT's computation on the grid, padding positions as computed."""
        if not torch.compiler.is_compiling():  # shape checks only; tracing sees symbolic shapes
            check_model_inputs(input_ids, inputs_embeds, attention_mask, position_ids, self.config)
        inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
        return encode_grid(self, *inputs, bool(output_hidden_states), bool(output_attentions))


def _wants_hidden_states(model: PreTrainedModel, requested: bool | None) -> bool:
    return bool(requested if requested is not None else model.config.output_hidden_states)


def _wants_attentions(model: PreTrainedModel, requested: bool | None) -> bool:
    return bool(requested if requested is not None else model.config.output_attentions)


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

    On the default path, logits are computed for real tokens only and are zero at padding positions (as
    ModernBERT's flash-attention backend returns); on the padded path they are computed everywhere. With
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
        inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
        output_hidden_states = _wants_hidden_states(self, output_hidden_states)
        output_attentions = _wants_attentions(self, output_attentions)
        ignore_index = self.config.sparse_pred_ignore_index
        if padded_path_wanted(output_attentions) or labels_on_padding(labels, attention_mask, ignore_index):
            grid = self.model.encode_grid(*inputs, output_hidden_states, output_attentions)
            return self._forward_grid(grid, labels, **kwargs)
        encoded = self.model.encode(*inputs, output_hidden_states)
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

    def _forward_grid(self, grid: BaseModelOutput, labels: torch.Tensor | None, **kwargs) -> MaskedLMOutput:
        """The padded path (`padded.py`): ModernBERT's (sdpa or eager) logits and loss."""
        hidden = grid.last_hidden_state
        loss = None
        if labels is not None and self.config.sparse_prediction:
            flat_labels = labels.to(hidden.device).reshape(-1)
            chosen = flat_labels != self.config.sparse_pred_ignore_index
            logits = self.decoder(self.head(hidden.reshape(-1, hidden.shape[-1])[chosen]))
            loss = self.loss_function(
                logits, flat_labels[chosen], vocab_size=self.config.vocab_size, **kwargs
            )
        else:
            logits = self.decoder(self.head(hidden))
            if labels is not None:
                loss = self.loss_function(
                    logits, labels.to(logits.device), vocab_size=self.config.vocab_size, **kwargs
                )
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=grid.hidden_states, attentions=grid.attentions
        )

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
        inputs = dict(attention_mask=attention_mask, position_ids=position_ids, inputs_embeds=inputs_embeds)
        wanted = dict(output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        return self.model(input_ids, **inputs, **wanted, return_dict=True)


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
        inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
        outputs = self._encode(*inputs, output_hidden_states, output_attentions)
        logits = self._classify(self._pool(outputs.last_hidden_state, attention_mask))
        loss = None
        if labels is not None:
            if labels.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"labels batch size {labels.shape[0]} does not match input batch size {logits.shape[0]}"
                )
            loss = self.loss_function(labels=labels, pooled_logits=logits, config=self.config, **kwargs)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


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
        """labels: `(batch, seq_len)` class ids, -100 where no loss is wanted. Labels on padding positions are
        scored on what the padded path computes there, as ModernBERT does."""
        inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
        if labels_on_padding(labels, attention_mask, -100):
            hidden_states = _wants_hidden_states(self, output_hidden_states)
            outputs = self.model.encode_grid(
                *inputs, hidden_states, _wants_attentions(self, output_attentions)
            )
        else:
            outputs = self._encode(*inputs, output_hidden_states, output_attentions)
        logits = self._classify(outputs.last_hidden_state)
        _check_labels_shape(labels, logits.shape[:2], "labels")
        loss = None if labels is None else self.loss_function(logits, labels, self.config, **kwargs)
        return TokenClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


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
        inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
        outputs = self._encode(*inputs, output_hidden_states, output_attentions)
        start_logits, end_logits = self._classify(outputs.last_hidden_state).split(1, dim=-1)
        start_logits = start_logits.squeeze(-1).contiguous()
        end_logits = end_logits.squeeze(-1).contiguous()
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = self.loss_function(start_logits, end_logits, start_positions, end_positions, **kwargs)
        return QuestionAnsweringModelOutput(
            loss=loss,
            start_logits=start_logits,
            end_logits=end_logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


class RexBertForMultipleChoice(_RexBertClassifierModel):
    """Multiple choice: inputs `(batch, num_choices, seq_len)`, one score per choice."""

    def __init__(self, config: RexBertConfig):
        super().__init__(config, 1)
        self.loss_function = multiple_choice_loss  # transformers has no entry for this task

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
        inputs = (flatten(input_ids, 1), attention_mask, flatten(position_ids, 1), flatten(inputs_embeds, 2))
        outputs = self._encode(*inputs, output_hidden_states, output_attentions)
        logits = self._classify(self._pool(outputs.last_hidden_state, attention_mask)).view(-1, num_choices)
        loss = None if labels is None else self.loss_function(logits, labels, **kwargs)
        return MultipleChoiceModelOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


def multiple_choice_loss(logits: torch.Tensor, labels: torch.Tensor, **kwargs) -> torch.Tensor:
    """Cross-entropy over the choices (mean, or sum / `num_items_in_batch` under the Trainer)."""
    return fixed_cross_entropy(logits, labels.to(logits.device), **kwargs)


# --------------------------------------------------------------------------------------------------------
# Auto classes: the one list the package registers with transformers (`__init__.py`) and writes into saved
# configs as `auto_map`, so a saved folder also loads with trust_remote_code=True.
# --------------------------------------------------------------------------------------------------------

AUTO_CLASSES = {
    "AutoModel": RexBertModel,
    "AutoModelForMaskedLM": RexBertForMaskedLM,
    "AutoModelForSequenceClassification": RexBertForSequenceClassification,
    "AutoModelForTokenClassification": RexBertForTokenClassification,
    "AutoModelForQuestionAnswering": RexBertForQuestionAnswering,
    "AutoModelForMultipleChoice": RexBertForMultipleChoice,
}


def auto_map() -> dict[str, str]:
    """The `auto_map` of a RexBERT checkpoint: the config and every head, as `module.Class` references
    into the remote-code files shipped with the checkpoint."""
    config_module = RexBertConfig.__module__.rsplit(".", 1)[-1]
    model_module = __name__.rsplit(".", 1)[-1]
    return {
        "AutoConfig": f"{config_module}.{RexBertConfig.__name__}",
        **{auto: f"{model_module}.{cls.__name__}" for auto, cls in AUTO_CLASSES.items()},
    }


# `register_for_auto_class` makes `save_pretrained` copy this file and its relative imports next to the weights.
RexBertConfig.register_for_auto_class()
for _auto_name, _model_class in AUTO_CLASSES.items():
    _model_class.register_for_auto_class(_auto_name)

__all__ = [
    "AUTO_CLASSES",
    "RexBertForMaskedLM",
    "RexBertForMultipleChoice",
    "RexBertForQuestionAnswering",
    "RexBertForSequenceClassification",
    "RexBertForTokenClassification",
    "RexBertModel",
    "RexBertPreTrainedModel",
    "auto_map",
    "multiple_choice_loss",
]
