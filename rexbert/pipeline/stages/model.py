"""`model`: the final model directory `model/`: the last phase's weights (hard-linked), tokenizer, lexicon,
the training summary and a sentence-transformers (mean pooling) configuration (`hub_cards`)."""

from __future__ import annotations

import shutil

from hub_cards.integrations import make_sentence_transformer
from rexbert_core.safe_outputs import record_written
from trainers.checkpoints import link_model_dir
from trainers.pretrain import SUMMARY_FILENAME

from ..stage import RunPlan, Stage
from .report import link

__all__ = ["STAGE"]


def run(job: None, plan: RunPlan) -> dict:
    layout = plan.layout
    link_model_dir(layout.outputs_of("pretrain")["model"], layout.model)
    linked = {path.name for path in layout.model.iterdir()}
    shutil.copy2(layout.pretrain / SUMMARY_FILENAME, layout.model / SUMMARY_FILENAME)
    make_sentence_transformer(layout.model, pooling="mean")
    record_written(layout.model, *({path.name for path in layout.model.iterdir()} - linked))
    return {"model": str(layout.model)}


def report_section(plan: RunPlan) -> list[str]:
    model = plan.layout.model
    card = plan.layout.outputs_of("cards").get("model_card", model / "README.md")
    return [
        "## Model",
        "",
        f"{link(plan, model)} (weights, tokenizer, saliency lexicon, sentence-transformers config), "
        f"model card {link(plan, card)}. Load it with:",
        "",
        "```python",
        "import modeling_rexbert  # registers the rexbert model type",
        "from transformers import AutoModel, AutoTokenizer",
        f'model = AutoModel.from_pretrained("{model}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{model}")',
        "```",
        "",
        f"Publish with `rexbert push model {model} <repo_id>` and "
        f"`rexbert push dataset {plan.layout.curation / '<corpus>'} <repo_id>`.",
    ]


STAGE = Stage("model", run, outputs=("model",), report=report_section)
