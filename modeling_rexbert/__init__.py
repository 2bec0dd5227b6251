# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""RexBERT: ModernBERT-architecture encoders for e-commerce, as a transformers model package.

Importing this package registers `model_type="rexbert"` with transformers' Auto classes. The tokenizer
helpers (`modeling_rexbert.tokenization`) and the checkpoint converter (`modeling_rexbert.convert`) are
submodules imported on demand.
"""

import transformers

from .configuration_rexbert import PRESET_SIZES, PRESETS, RexBertConfig, rexbert_config
from .heads import (
    RexBertForMaskedLM,
    RexBertForMultipleChoice,
    RexBertForQuestionAnswering,
    RexBertForSequenceClassification,
    RexBertForTokenClassification,
)
from .cpu_linear import with_int8_linear, with_onednn_linear
from .fast_path import with_rexbert_classes
from .modeling_rexbert import RexBertModel, RexBertPreTrainedModel, auto_classes

transformers.AutoConfig.register(RexBertConfig.model_type, RexBertConfig, exist_ok=True)
for _auto_name, _model in auto_classes().items():
    getattr(transformers, _auto_name).register(RexBertConfig, _model, exist_ok=True)

__all__ = [
    "PRESETS",
    "PRESET_SIZES",
    "RexBertConfig",
    "RexBertForMaskedLM",
    "RexBertForMultipleChoice",
    "RexBertForQuestionAnswering",
    "RexBertForSequenceClassification",
    "RexBertForTokenClassification",
    "RexBertModel",
    "RexBertPreTrainedModel",
    "rexbert_config",
    "with_int8_linear",
    "with_onednn_linear",
    "with_rexbert_classes",
]
