"""Domain pre-selection: keep documents whose source domain label is one of the wanted domains (cheap, so
it runs before any model, e.g. FineFineWeb's shopping-overlapping domains)."""

from __future__ import annotations

from dataclasses import dataclass, field

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.text import TokenCounter

from .counting import CountingFilter
from .stage import FilterStage, StepContext

__all__ = ["DomainPreselectConfig", "DomainPreselectFilter"]


@dataclass
class DomainPreselectConfig(FilterStage):
    """Keep documents whose source domain label is in ``keep_domains`` (all labels when empty)."""

    keep_domains: list[str] = field(default_factory=list)

    def steps(self, context: StepContext) -> list:
        if not self.keep_domains:
            return []
        return [
            DomainPreselectFilter(
                self,
                token_counter=context.token_counter,
                exclusion_writer=context.removed_writer("domain_preselect"),
            )
        ]


class DomainPreselectFilter(CountingFilter):
    """Keeps documents whose source domain label (``domain`` metadata) is one of `keep_domains`.
    Drop reason: ``domain_not_selected``."""

    def __init__(
        self,
        settings: DomainPreselectConfig,
        *,
        token_counter: TokenCounter,
        exclusion_writer: DiskWriter | None = None,
    ):
        super().__init__("domain_preselect", token_counter=token_counter, exclusion_writer=exclusion_writer)
        self.keep_domains = frozenset(settings.keep_domains)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return doc.metadata.get("domain") in self.keep_domains or (False, "domain_not_selected")
