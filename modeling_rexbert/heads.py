# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""RexBERT's task heads, each on the encoder (`modeling_rexbert.RexBertModel`) it reuses as `self.model`.

    RexBertForMaskedLM                  prediction head + decoder tied to the token embeddings
    RexBertForSequenceClassification    pooled (`classifier_pooling`) classification or regression
    RexBertForTokenClassification       a label per token
    RexBertForQuestionAnswering         start / end logits per token
    RexBertForMultipleChoice            one score per choice

Every head computes its loss through `self.loss_function` (transformers' loss for the task), so a custom loss
set on the model is honoured, declares its output layers for weight initialisation (`_output_layers`) and
registers itself for its Auto class at the end of this file. A new head is a class here (or in a module of
its own) with those three things; `modeling_rexbert.auto_classes()` finds it.
"""

from __future__ import annotations

import torch
from torch import nn
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
from .layers import RexBertPredictionHead
from .mlm_decoder import decode, decode_with_loss
from .modeling_rexbert import (
    RexBertModel,
    RexBertPreTrainedModel,
    check_labels_shape,
    repad_hidden_states,
    wants_attentions,
    wants_hidden_states,
)
from .padded import labels_on_padding, padded_path_wanted, zero_padding
from .unpadding import PackedBatch, take_rows

# --------------------------------------------------------------------------------------------------------
# Masked language modelling.
# --------------------------------------------------------------------------------------------------------


class RexBertForMaskedLM(RexBertPreTrainedModel):
    """Encoder + prediction head + decoder tied to the token embeddings.

    Logits are zero at padding positions on every path (`padded.py`; the default path computes real tokens
    only), except that labels on padding get ModernBERT's logits and loss there. With
    `config.sparse_prediction` and labels, only labelled positions reach the decoder and `logits` has shape
    `(num_labelled, vocab_size)` (ModernBERT's convention).
    """

    _tied_weights_keys = {"decoder.weight": "model.embeddings.tok_embeddings.weight"}
    _output_layers = {"decoder": "residual"}

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
        output_hidden_states = wants_hidden_states(self, output_hidden_states)
        output_attentions = wants_attentions(self, output_attentions)
        ignore_index = self.config.sparse_pred_ignore_index
        on_padding = labels_on_padding(labels, attention_mask, ignore_index)
        if padded_path_wanted(output_attentions) or on_padding:
            grid = self.model.encode_grid(*inputs, output_hidden_states, output_attentions, not on_padding)
            return self._forward_grid(grid, labels, None if on_padding else attention_mask, **kwargs)
        encoded = self.model.encode(*inputs, output_hidden_states)
        batch = encoded.batch
        check_labels_shape(labels, (batch.batch_size, batch.seq_len), "labels")
        hidden = encoded.last_hidden_state
        if labels is None:
            logits = self._decode(self.head(hidden), batch)
            return MaskedLMOutput(logits=logits, hidden_states=repad_hidden_states(encoded))

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
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=repad_hidden_states(encoded))

    def _forward_grid(
        self, grid: BaseModelOutput, labels: torch.Tensor | None, padding_mask: torch.Tensor | None, **kwargs
    ) -> MaskedLMOutput:
        """The padded path (`padded.py`): ModernBERT's (sdpa or eager) logits and loss; per-token logits
        zeroed where `padding_mask` is 0."""
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
            logits = zero_padding(logits, padding_mask)
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

    _output_layers = {"classifier": "classifier"}

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
        on_padding = labels_on_padding(labels, attention_mask, -100)
        if on_padding:
            hidden_states = wants_hidden_states(self, output_hidden_states)
            outputs = self.model.encode_grid(
                *inputs, hidden_states, wants_attentions(self, output_attentions), zeros_at_padding=False
            )
        else:
            outputs = self._encode(*inputs, output_hidden_states, output_attentions)
        logits = self._classify(outputs.last_hidden_state)
        check_labels_shape(labels, logits.shape[:2], "labels")
        loss = None if labels is None else self.loss_function(logits, labels, self.config, **kwargs)
        logits = logits if on_padding else zero_padding(logits, attention_mask)
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
        logits = zero_padding(self._classify(outputs.last_hidden_state), attention_mask)
        start_logits, end_logits = logits.split(1, dim=-1)
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


for _auto_name, _head in (
    ("AutoModelForMaskedLM", RexBertForMaskedLM),
    ("AutoModelForSequenceClassification", RexBertForSequenceClassification),
    ("AutoModelForTokenClassification", RexBertForTokenClassification),
    ("AutoModelForQuestionAnswering", RexBertForQuestionAnswering),
    ("AutoModelForMultipleChoice", RexBertForMultipleChoice),
):
    _head.register_for_auto_class(_auto_name)

__all__ = [
    "RexBertForMaskedLM",
    "RexBertForMultipleChoice",
    "RexBertForQuestionAnswering",
    "RexBertForSequenceClassification",
    "RexBertForTokenClassification",
    "multiple_choice_loss",
]
