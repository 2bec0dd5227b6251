"""The quality stage: heuristic filters in the spirit of Gopher, C4 and FineWeb, tuned for short shopping
text (see `QualityFilter`), or datatrove's own filters (`DatatroveQualityFilter`); `QualityConfig` holds the
settings and their defaults."""

from __future__ import annotations

import itertools
import operator
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.text import TokenCounter

from .counting import CountingFilter
from .stage import FilterStage, StepContext

__all__ = ["DATATROVE_FILTERS", "DatatroveQualityFilter", "QualityConfig", "QualityFilter"]


_ASCII_LETTERS_AND_SPACE = (string.ascii_letters + string.whitespace).encode()
_NO_LETTER_WORD = re.compile(r"(?<!\S)(?:[^\w\s]|[\d_])+(?!\S)")  # a word without any letter
REPETITION_WORDS = 500  # the bigram repetition check looks at the first 500 words
_BULLETS = ("•", "-", "*", "●", "‣", "◦")


class QualityFilter(CountingFilter):
    """Gopher / C4 / FineWeb-style heuristics with thresholds suited to short shopping text.

    Why not datatrove's GopherQualityFilter & co. by default: they tokenize every document with spaCy,
    which runs well below the 10 MB/s per core this stage must sustain (bench/bench_curation.py measures
    both), and their defaults (e.g. at least 50 words) would drop every product title and review
    sentence. The same checks here split on whitespace; ``engine: datatrove`` in the config runs
    datatrove's filters instead. Checks (reason names): too_few_words, too_many_words,
    mean_word_length, symbol_ratio (# and ellipses per word), alpha_words (share of words with a letter),
    bullet_lines, ellipsis_lines, duplicate_lines, lorem_ipsum and, for documents of at least
    `min_words_for_repetition` words, top_bigram (character share of the most frequent word bigram,
    over the first `REPETITION_WORDS` words).
    """

    def __init__(
        self,
        settings: QualityConfig | None = None,
        *,
        token_counter: TokenCounter,
        exclusion_writer: DiskWriter | None = None,
    ):
        super().__init__("quality", token_counter=token_counter, exclusion_writer=exclusion_writer)
        self.settings = settings or QualityConfig()

    def _letterless_words(self, text: str, n_words: int) -> int:
        """Words without a letter. Each has a non-letter, non-space character, so when those are few
        (counted by a fast byte deletion) the exact regex count is not needed."""
        others = len(text.encode("utf-8", "replace").translate(None, _ASCII_LETTERS_AND_SPACE))
        if others / n_words <= 1 - self.settings.min_alpha_word_fraction:
            return others
        return len(_NO_LETTER_WORD.findall(text))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        s, text = self.settings, doc.text
        tokens = text.split()
        n_words = len(tokens)
        if n_words < s.min_words:
            return False, "too_few_words"
        if n_words > s.max_words:
            return False, "too_many_words"
        n_chars = len("".join(tokens))  # a C-level pass, faster than summing word lengths
        if not s.min_mean_word_length <= n_chars / n_words <= s.max_mean_word_length:
            return False, "mean_word_length"
        if (text.count("#") + text.count("...") + text.count("…")) / n_words > s.max_symbol_word_ratio:
            return False, "symbol_ratio"
        if self._letterless_words(text, n_words) / n_words > 1 - s.min_alpha_word_fraction:
            return False, "alpha_words"
        if s.drop_lorem_ipsum and "lorem ipsum" in text.lower():
            return False, "lorem_ipsum"
        lines = [line for line in map(str.strip, text.split("\n")) if line]
        if len(lines) > 1:
            if sum(line.startswith(_BULLETS) for line in lines) / len(lines) > s.max_bullet_line_fraction:
                return False, "bullet_lines"
            ellipsis_lines = sum(line.endswith(("...", "…")) for line in lines)
            if ellipsis_lines / len(lines) > s.max_ellipsis_line_fraction:
                return False, "ellipsis_lines"
            if 1 - len(set(lines)) / len(lines) > s.max_duplicate_line_fraction:
                return False, "duplicate_lines"
        if n_words >= s.min_words_for_repetition and self.top_bigram_too_frequent(tokens, n_chars):
            return False, "top_bigram"
        return True

    def top_bigram_too_frequent(self, tokens: list[str], n_chars: int) -> bool:
        """Whether the most frequent bigram of the first `REPETITION_WORDS` words covers more than
        ``max_top_bigram_char_fraction`` of their characters.

        A bigram (a, b) occurs at most as often as each of its words, so its characters are at most
        the characters of every occurrence of a plus those of b: twice the largest per-word share bounds
        it. Counting words is about twice as fast as counting bigrams, and on ordinary text that bound
        already settles the check.
        """
        limit = self.settings.max_top_bigram_char_fraction
        head = tokens[:REPETITION_WORDS]
        head_chars = n_chars if len(head) == len(tokens) else len("".join(head))
        word_counts = Counter(head)
        word_chars = max(map(operator.mul, word_counts.values(), map(len, word_counts)))
        if 2 * word_chars / head_chars <= limit:
            return False
        (first, second), count = Counter(itertools.pairwise(head)).most_common(1)[0]
        return count > 1 and count * (len(first) + len(second)) / head_chars > limit


@dataclass
class QualityConfig(FilterStage):
    """Quality heuristics. ``engine: fast`` runs `QualityFilter` with the thresholds below; ``engine:
    datatrove`` runs the datatrove filters named in ``datatrove_filters`` (gopher_quality, gopher_repetition,
    c4_quality, fineweb_quality) with the given keyword arguments."""

    engine: Literal["fast", "datatrove"] = "fast"
    min_words: int = 3
    max_words: int = 100_000
    min_mean_word_length: float = 2.0
    max_mean_word_length: float = 12.0
    max_symbol_word_ratio: float = 0.1
    min_alpha_word_fraction: float = 0.6
    max_bullet_line_fraction: float = 0.9
    max_ellipsis_line_fraction: float = 0.3
    max_duplicate_line_fraction: float = 0.3
    max_top_bigram_char_fraction: float = 0.2
    min_words_for_repetition: int = 50
    drop_lorem_ipsum: bool = True
    datatrove_filters: dict[str, dict[str, Any]] = field(default_factory=dict)

    def steps(self, context: StepContext) -> list:
        if self.engine == "fast":
            return [
                QualityFilter(
                    self,
                    token_counter=context.token_counter,
                    exclusion_writer=context.removed_writer("quality"),
                )
            ]
        return [
            DatatroveQualityFilter(
                filter_name=name,
                filter_kwargs=kwargs,
                token_counter=context.token_counter,
                exclusion_writer=context.removed_writer(f"quality_{name}"),
            )
            for name, kwargs in self.datatrove_filters.items()
        ]


DATATROVE_FILTERS = {
    "gopher_quality": "GopherQualityFilter",
    "gopher_repetition": "GopherRepetitionFilter",
    "c4_quality": "C4QualityFilter",
    "fineweb_quality": "FineWebQualityFilter",
}


class DatatroveQualityFilter(CountingFilter):
    """Runs one of datatrove's quality filters (by config name) inside our accounting."""

    def __init__(
        self,
        *,
        filter_name: str,
        filter_kwargs: dict | None = None,
        token_counter: TokenCounter,
        exclusion_writer: DiskWriter | None = None,
    ):
        from datatrove.pipeline import filters

        if filter_name not in DATATROVE_FILTERS:
            raise ValueError(
                f"unknown datatrove filter {filter_name!r}; choose from {sorted(DATATROVE_FILTERS)}"
            )
        super().__init__(
            f"quality:{filter_name}", token_counter=token_counter, exclusion_writer=exclusion_writer
        )
        self.inner = getattr(filters, DATATROVE_FILTERS[filter_name])(**(filter_kwargs or {}))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        before = doc.text
        result = self.inner.filter(doc)
        if doc.text is not before:
            self.recount(doc)
        return result
