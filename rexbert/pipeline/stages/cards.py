"""`cards`: the model card (from the training summary and the results) and a dataset card per corpus (from its
report), written into `model/` and `curation/<corpus>/` (`hub_cards`)."""

from __future__ import annotations

from dataclasses import dataclass

from hub_cards import CardOptions, DatasetCardOptions, write_dataset_card, write_model_card
from rexbert_core.safe_outputs import record_written

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage

__all__ = ["STAGE", "CardsJob"]


@dataclass(frozen=True)
class CardsJob:
    model: CardOptions
    datasets: dict[str, DatasetCardOptions]


def configure(config: RunConfig, layout: Layout) -> CardsJob:
    datasets = {
        corpus: DatasetCardOptions(**{"pretty_name": f"RexBERT {corpus} corpus", **config.cards.dataset})
        for corpus in config.curation.corpora
    }
    return CardsJob(model=CardOptions(**config.cards.model), datasets=datasets)


def run(job: CardsJob, plan: RunPlan) -> dict:
    layout = plan.layout
    record_written(layout.model, "README.md")
    model_card = write_model_card(layout.model, job.model, results=layout.results)
    dataset_cards = {
        corpus: str(write_dataset_card(layout.corpus(corpus).root, options))
        for corpus, options in job.datasets.items()
    }
    return {"model_card": str(model_card), "dataset_cards": dataset_cards}


STAGE = Stage("cards", run, section="cards", configure=configure)
