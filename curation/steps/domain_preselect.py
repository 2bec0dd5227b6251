"""Domain pre-selection: keep documents whose source domain label is one of the wanted domains (cheap, so
it runs before any model, e.g. FineFineWeb's shopping-overlapping domains)."""

from __future__ import annotations

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.text import TokenCounter

from .counting import CountingFilter

__all__ = ["DomainPreselectFilter"]


class DomainPreselectFilter(CountingFilter):
    """Keeps documents whose source domain label (``domain`` metadata) is one of `keep_domains`.
    Drop reason: ``domain_not_selected``."""

    def __init__(
        self,
        *,
        keep_domains: list[str],
        token_counter: TokenCounter,
        exclusion_writer: DiskWriter | None = None,
    ):
        super().__init__("domain_preselect", token_counter=token_counter, exclusion_writer=exclusion_writer)
        self.keep_domains = frozenset(keep_domains)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return doc.metadata.get("domain") in self.keep_domains or (False, "domain_not_selected")
