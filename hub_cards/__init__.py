"""Hub publishing for RexBERT: model and dataset cards, upload plans and pushes, ecosystem glue.

Model cards come from a checkpoint directory, its `training_summary.json` and the eval `results.json`;
dataset cards from the curation report. `rexbert push model|dataset` (see `hub_cards.cli`) uploads them.
"""

from hub_cards.dataset_card import DatasetCardOptions, build_dataset_card, write_dataset_card
from hub_cards.integrations import LORA_TARGET_MODULES, lora_config, make_sentence_transformer
from hub_cards.model_card import CardOptions, build_model_card, eval_results_from, write_model_card
from hub_cards.publish import UploadPlan, plan_dataset_upload, plan_model_upload, push

__all__ = [
    "CardOptions",
    "DatasetCardOptions",
    "LORA_TARGET_MODULES",
    "UploadPlan",
    "build_dataset_card",
    "build_model_card",
    "eval_results_from",
    "lora_config",
    "make_sentence_transformer",
    "plan_dataset_upload",
    "plan_model_upload",
    "push",
    "write_dataset_card",
    "write_model_card",
]
