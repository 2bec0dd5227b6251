"""`data`: in sample mode, the generated corpus (with its `sources.json`), classifier examples and evaluation
sets, written into `data/` (`rexbert_core.sample_corpus`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rexbert_core.sample_corpus import (
    MANIFEST_FILENAME,
    write_classifier_examples,
    write_sample_corpus,
    write_sample_eval_data,
)

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage

__all__ = ["STAGE", "SampleData"]


@dataclass(frozen=True)
class SampleData:
    """What the data stage writes, and with which seed (the classifier examples use the next one)."""

    seed: int
    corpus: Path
    classifier_examples: Path
    eval_sets: Path


def configure(config: RunConfig, layout: Layout) -> SampleData | None:
    if not config.data.sample_corpus:
        return None
    seed = config.seeds["data"].value
    return SampleData(seed, layout.sample_corpus, layout.classifier_examples, layout.sample_eval)


def run(job: SampleData | None, plan: RunPlan) -> dict:
    if job is None:
        return {"skipped": "data.sample_corpus is false"}
    corpus = write_sample_corpus(job.corpus, seed=job.seed)
    examples = write_classifier_examples(job.classifier_examples, seed=job.seed + 1)
    evaluation = write_sample_eval_data(job.eval_sets)
    return {
        "corpus": [str(p) for p in corpus],
        "manifest": str(job.corpus / MANIFEST_FILENAME),
        "classifier_examples": str(examples),
        "eval": {k: str(v) for k, v in evaluation.items()},
    }


STAGE = Stage("data", run, outputs=("data",), section="data", configure=configure)
