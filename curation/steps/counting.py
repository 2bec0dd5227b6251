"""The accounting every curation step shares, so the corpus report can be derived from what ran.

A removing stage is a `CountingFilter`: a datatrove `BaseFilter` (removed documents go to its exclusion
writer with the reason in ``filter_reason``, counted as ``dropped_<reason>``) that also counts
``tokens_in`` and ``tokens_kept`` from the ``token_count`` metadata the readers set and the stages refresh
whenever they edit text. Steps that edit without removing (`PIIScrubber`) and the dedup filters count the
same statistics. The report (`curation.report`) walks the stats files of the executors in order and makes
one row of every step that has ``tokens_in``: adding a stage needs no list anywhere else.
Step names are ``curation:<stage>``.
"""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.text import TokenCounter

__all__ = ["MODEL_BATCH_SIZE", "CountingFilter", "count_tokens_through", "stage_step_name"]

MODEL_BATCH_SIZE = 256  # documents a model-backed stage scores back to back (see CountingFilter)


def stage_step_name(stage: str) -> str:
    return f"curation:{stage}"


def count_tokens_through(step, data: DocumentsPipeline, run) -> DocumentsPipeline:
    """Run `run(documents)` (a step's own document loop) counting ``tokens_in`` on the way in and
    ``tokens_kept`` on the way out, in `step`'s stats."""

    def counted(documents):
        for doc in documents:
            step.stat_update("tokens_in", value=doc.metadata.get("token_count", 0))
            yield doc

    for doc in run(counted(data)):
        step.stat_update("tokens_kept", value=doc.metadata.get("token_count", 0))
        yield doc


class CountingFilter(BaseFilter):
    """A BaseFilter that also records ``tokens_in`` and ``tokens_kept`` for the stage report.

    With `batch_size` > 1, datatrove hands the stage that many documents at a time and the stage
    scores them back to back. The model stages (classifier, language id) use this: alternating two
    fastText models document by document keeps evicting each other's tables from the CPU cache, which
    cost about 10% of the chain's throughput. Decisions do not depend on the batch size.
    """

    def __init__(
        self,
        stage: str,
        *,
        token_counter: TokenCounter,
        exclusion_writer: DiskWriter | None = None,
        batch_size: int = 1,
    ):
        self.name = stage_step_name(stage)
        super().__init__(exclusion_writer, batch_size)
        self.token_counter = token_counter

    def filter_batch(self, batch: list[Document]) -> list[bool | tuple[bool, str]]:
        return [self.filter(doc) for doc in batch]

    def recount(self, doc: Document) -> None:
        """Refresh the token count after the stage edited the text."""
        doc.metadata["token_count"] = self.token_counter(doc.text)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        yield from count_tokens_through(
            self, data, lambda docs: super(CountingFilter, self).run(docs, rank, world_size)
        )
