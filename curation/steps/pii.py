"""PII scrubbing: e-mail addresses, phone numbers and public IP addresses replaced by placeholders."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curation.text import TokenCounter

from .counting import stage_step_name
from .stage import FilterStage, StepContext

__all__ = ["PIIConfig", "PIIScrubber"]


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_PHONE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?\(?\d{1,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])"
)
_DIGIT_RUN = re.compile(r"\d[\d .()+-]{5,}\d")  # every phone number and IPv4 address contains one
_IPV4 = re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])")


def _public_ip_or_same(match: re.Match) -> str:
    try:
        return "<IP>" if ipaddress.ip_address(match.group(0)).is_global else match.group(0)
    except ValueError:
        return match.group(0)


@dataclass
class PIIConfig(FilterStage):
    """Replace e-mail addresses, phone numbers and public IP addresses with placeholders."""

    emails: bool = True
    phones: bool = True
    ips: bool = True

    def steps(self, context: StepContext) -> list:
        return [PIIScrubber(self, token_counter=context.token_counter)]


class PIIScrubber(PipelineStep):
    """Replaces e-mail addresses, phone numbers and public IPv4 addresses with ``<EMAIL>``, ``<PHONE>``
    and ``<IP>`` (private addresses such as 192.168.0.1, common in router manuals, are kept).

    Written here rather than with datatrove's PIIFormatter because that one has no phone numbers and
    swaps in real-looking addresses instead of placeholders. Counts replacements per kind.
    """

    type = "✂️ - FORMAT"

    def __init__(self, settings: PIIConfig | None = None, *, token_counter: TokenCounter):
        self.name = stage_step_name("pii")
        super().__init__()
        self.token_counter = token_counter
        self.settings = settings or PIIConfig()

    def scrub(self, text: str) -> tuple[str, Counter]:
        counts: Counter = Counter()
        settings = self.settings
        if settings.emails and "@" in text:
            text, counts["emails_replaced"] = _EMAIL.subn("<EMAIL>", text)
        if not _DIGIT_RUN.search(text):  # fast path: no phone number or IP address can be present
            return text, counts
        if settings.phones:
            text, counts["phones_replaced"] = _PHONE.subn("<PHONE>", text)
        if settings.ips:
            replaced = _IPV4.sub(_public_ip_or_same, text)
            counts["ips_replaced"] = replaced.count("<IP>") - text.count("<IP>")
            text = replaced
        return text, counts

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("total")
            self.stat_update("tokens_in", value=doc.metadata.get("token_count", 0))
            with self.track_time():
                text, counts = self.scrub(doc.text)
                if text != doc.text:
                    doc.text = text
                    doc.metadata["token_count"] = self.token_counter(text)
                    self.stat_update("docs_edited")
                for kind, count in counts.items():
                    if count:
                        self.stat_update(kind, value=count)
            self.stat_update("forwarded")
            self.stat_update("tokens_kept", value=doc.metadata.get("token_count", 0))
            yield doc
