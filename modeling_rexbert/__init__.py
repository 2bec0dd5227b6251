"""RexBERT: ModernBERT-architecture encoders for e-commerce, as a transformers model package.

Importing this package registers `model_type="rexbert"` with transformers' Auto classes. The tokenizer
helpers (`modeling_rexbert.tokenization`) and the checkpoint converter (`modeling_rexbert.convert`) are
submodules imported on demand.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_rexbert import PRESET_SIZES, PRESETS, RexBertConfig, rexbert_config
from .modeling_rexbert import (
    RexBertForMaskedLM,
    RexBertForMultipleChoice,
    RexBertForQuestionAnswering,
    RexBertForSequenceClassification,
    RexBertForTokenClassification,
    RexBertModel,
    RexBertPreTrainedModel,
)

AutoConfig.register(RexBertConfig.model_type, RexBertConfig, exist_ok=True)
for _auto, _model in (
    (AutoModel, RexBertModel),
    (AutoModelForMaskedLM, RexBertForMaskedLM),
    (AutoModelForSequenceClassification, RexBertForSequenceClassification),
    (AutoModelForTokenClassification, RexBertForTokenClassification),
    (AutoModelForQuestionAnswering, RexBertForQuestionAnswering),
    (AutoModelForMultipleChoice, RexBertForMultipleChoice),
):
    _auto.register(RexBertConfig, _model, exist_ok=True)

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
