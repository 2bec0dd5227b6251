# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""RexBERT: ModernBERT-architecture encoders for e-commerce, as a transformers model package.

Importing this package registers `model_type="rexbert"` with transformers' Auto classes. The tokenizer
helpers (`modeling_rexbert.tokenization`) and the checkpoint converter (`modeling_rexbert.convert`) are
submodules imported on demand.
"""

import transformers

from .configuration_rexbert import PRESET_SIZES, PRESETS, RexBertConfig, rexbert_config
from .modeling_rexbert import (
    AUTO_CLASSES,
    RexBertForMaskedLM,
    RexBertForMultipleChoice,
    RexBertForQuestionAnswering,
    RexBertForSequenceClassification,
    RexBertForTokenClassification,
    RexBertModel,
    RexBertPreTrainedModel,
)

transformers.AutoConfig.register(RexBertConfig.model_type, RexBertConfig, exist_ok=True)
for _auto_name, _model in AUTO_CLASSES.items():
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
]
