"""The stages of `rexbert run`, in order: each module declares one `Stage` (see `rexbert.pipeline.stage`), and
this list is the one place that orders them. The layout (what each creates), the plan (what each is
handed), the runner and the report read the declarations.

    data        generated sample corpus, classifier examples, evaluation sets (`rexbert_core.sample_corpus`)
    classifier  the fastText e-commerce classifier (`curation.classifier`)
    curate      the datatrove curation pipeline, once per corpus (`curation.run`)
    tokenize    the run's tokenizer, and the curated corpora as token shards (`curation.tokenize`)
    pretrain    the recipe's phases on the curated corpora (`trainers.pretrain`)
    model       the final model directory with a sentence-transformers configuration (`hub_cards`)
    eval        the evaluation suites (`eval_suites.runner`)
    finetune    search and catalogue models from the run's model, beside BM25 (`eval_suites.tasks`)
    cards       model card and dataset cards (`hub_cards`)
    report      report.md, from every stage's section
"""

from ..stage import Stage
from . import cards, classifier, curate, data, eval, finetune, model, pretrain, report, tokenize

__all__ = ["STAGES"]

STAGES: tuple[Stage, ...] = tuple(
    module.STAGE
    for module in (data, classifier, curate, tokenize, pretrain, model, eval, finetune, cards, report)
)
