"""`classifier`: the fastText e-commerce classifier for the curation stage (`curation.classifier`), trained
when a corpus runs the classifier stage without naming a model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from curation.classifier import TrainSettings, train_and_evaluate
from rexbert_core.typed_config import ConfigError, DataError

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage

__all__ = ["STAGE", "ClassifierJob"]


@dataclass(frozen=True)
class ClassifierJob:
    """Train `settings` on `examples` (jsonl/parquet rows of text + label, `positive_label` marking
    e-commerce) or on the shared data folder's labelled pool (`shared_pool`), into `model`."""

    model: Path
    settings: TrainSettings
    examples: tuple[str, ...] = ()
    positive_label: str = "ecommerce"
    shared_pool: str | None = None
    max_per_source: int = 4000


def configure(config: RunConfig, layout: Layout) -> ClassifierJob | None:
    if not any(config.needs_trained_classifier(corpus) for corpus in config.curation.corpora):
        return None
    section = config.classifier
    examples = section.examples or ([str(layout.classifier_examples)] if config.data.sample_corpus else [])
    if not section.shared_pool and not examples:
        raise ConfigError(
            "run config classifier: name `examples` (jsonl/parquet of text + label) or `shared_pool`, give "
            "curation.settings.stages.classifier.model, or disable that stage"
        )
    return ClassifierJob(
        model=layout.classifier,
        settings=replace(section.train, seed=config.seeds["classifier"].value),
        examples=tuple([examples] if isinstance(examples, str) else examples),
        positive_label=section.positive_label,
        shared_pool=section.shared_pool,
        max_per_source=section.max_per_source,
    )


def labelled_examples(job: ClassifierJob) -> tuple[list[str], list[bool], list[str] | None]:
    """(texts, is-e-commerce labels, source groups) from the shared pool or the example files."""
    if job.shared_pool:
        from curation.pool import load_shared_pool

        pool = load_shared_pool(job.shared_pool, max_per_source=job.max_per_source, seed=job.settings.seed)
        return [e.text for e in pool], [e.is_ecommerce for e in pool], [e.source for e in pool]
    from curation.readers import iter_records

    texts, labels = [], []
    for path in job.examples:
        for row, record in enumerate(iter_records(str(path))):
            if not isinstance(record.get("text"), str) or "label" not in record:
                raise DataError(f"classifier.examples: {path} row {row} needs a 'text' string and a 'label'")
            texts.append(record["text"])
            labels.append(str(record["label"]) == job.positive_label)
    return texts, labels, None


def run(job: ClassifierJob | None, plan: RunPlan) -> dict:
    if job is None:
        return {"skipped": "no corpus runs the classifier stage without a model"}
    texts, labels, groups = labelled_examples(job)
    summary = train_and_evaluate(texts, labels, job.model, settings=job.settings, groups=groups)
    return {
        "model": str(job.model),
        "threshold": summary["threshold"],
        "sizes": summary["sizes"],
        "test": summary.get("test"),
    }


STAGE = Stage("classifier", run, outputs=("classifier",), section="classifier", configure=configure)
