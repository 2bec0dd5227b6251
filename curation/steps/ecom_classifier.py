"""The e-commerce classifier stage: the fastText model trained by `rexbert curate train-classifier`
(`curation.classifier`) scores documents, and optionally their lines; `ClassifierConfig` holds the settings."""

from __future__ import annotations

from dataclasses import dataclass

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.classifier import EcomClassifier, classifier_threshold
from curation.text import TokenCounter
from rexbert_core.typed_config import path_field

from .counting import MODEL_BATCH_SIZE, CountingFilter
from .stage import FilterStage, StepContext

__all__ = ["ClassifierConfig", "EcomClassifierFilter"]


@dataclass
class ClassifierConfig(FilterStage):
    """The fastText e-commerce classifier, at document level and optionally per line.

    ``threshold: null`` uses the threshold train-classifier chose on validation data (``<model>.json``).
    Only the first ``max_chars`` characters are scored at document level."""

    model: str | None = path_field()
    threshold: float | None = None
    line_level: bool = False
    line_threshold: float = 0.5
    min_line_words: int = 4
    max_chars: int = 5000

    def steps(self, context: StepContext) -> list:
        return [
            EcomClassifierFilter(
                self,
                token_counter=context.token_counter,
                exclusion_writer=context.removed_writer("classifier"),
            )
        ]


class EcomClassifierFilter(CountingFilter):
    """Scores documents with the fastText e-commerce classifier (``ecom_score`` metadata).

    Drops documents scoring below the threshold (reason ``below_threshold``). With `line_level`, also drops
    the lines of kept documents that have at least `min_line_words` words and score below `line_threshold`
    (shorter lines such as prices or sizes stay with their document); a document left with no such line is
    dropped (``no_ecommerce_lines``). Only the first `max_chars` characters are scored at document level (as
    FineWeb-Edu's classifier reads only a document's beginning): a shopping page shows what it is early, and
    it bounds the cost.
    """

    def __init__(
        self,
        settings: ClassifierConfig,
        *,
        token_counter: TokenCounter,
        exclusion_writer: DiskWriter | None = None,
        batch_size: int = MODEL_BATCH_SIZE,
    ):
        super().__init__(
            "classifier",
            token_counter=token_counter,
            exclusion_writer=exclusion_writer,
            batch_size=batch_size,
        )
        if not settings.model:
            raise ValueError("the classifier stage needs a model (a fastText .bin from train-classifier)")
        self.settings = settings
        self.threshold = classifier_threshold(settings.model, settings.threshold)
        self._classifier = None

    @property
    def classifier(self) -> EcomClassifier:
        if self._classifier is None:  # loaded in the worker process, never pickled
            self._classifier = EcomClassifier(self.settings.model)
        return self._classifier

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_classifier": None}

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        score = self.classifier.score(doc.text[: self.settings.max_chars])
        doc.metadata["ecom_score"] = round(score, 5)
        if score < self.threshold:
            return False, "below_threshold"
        if self.settings.line_level:
            return self._filter_lines(doc)
        return True

    def _filter_lines(self, doc: Document) -> bool | tuple[bool, str]:
        lines = doc.text.split("\n")
        settings = self.settings
        long_line = [len(line.split()) >= settings.min_line_words for line in lines]
        kept = [
            line
            for line, is_long in zip(lines, long_line)
            if not is_long or self.classifier.score(line) >= settings.line_threshold
        ]
        kept_long = sum(len(line.split()) >= settings.min_line_words for line in kept)
        if kept_long == 0 and any(long_line):
            return False, "no_ecommerce_lines"
        if len(kept) < len(lines):
            self.stat_update("lines_removed", value=len(lines) - len(kept))
            doc.text = "\n".join(kept)
            self.recount(doc)
        return True
