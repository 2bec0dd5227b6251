"""Deduplication pieces around datatrove's exact and MinHash dedup: the content key, a faster signature
step, and the two removal filters with the stage accounting of every other step."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.dedup import ExactDedupFilter, MinhashDedupFilter, MinhashDedupSignature

from curation.text import dedup_words, normalized_for_exact_dedup

from .counting import count_tokens_through, stage_step_name

__all__ = [
    "CountedExactDedupFilter",
    "CountedMinhashDedupFilter",
    "ExactDedupConfig",
    "MinhashConfig",
    "WhitespaceMinhashSignature",
    "document_id_key",
    "exact_dedup_key",
]


@dataclass
class ExactDedupConfig:
    """Drop documents whose case- and whitespace-normalised text was already seen (datatrove ExactDedup)."""

    enabled: bool = True


@dataclass
class MinhashConfig:
    """MinHash near-duplicate removal (datatrove's four MinHash stages).

    With b buckets of r hashes, pairs of Jaccard similarity s are caught with probability
    1 - (1 - s^r)^b; the defaults (3-gram shingles, 20 x 5) catch s = 0.7 with p ~ 0.97 and
    s = 0.3 with p ~ 0.05, tuned on product listings (see tests/test_curation_dedup.py).
    """

    enabled: bool = True
    n_grams: int = 3
    num_buckets: int = 20
    hashes_per_bucket: int = 5
    seed: int = 1


class _CountedDedup:
    """Mixin for datatrove's dedup filters: the stage name, ``tokens_in`` / ``tokens_kept``, and the removed
    documents counted under a named reason (datatrove counts them only as ``dropped``)."""

    stage: str
    reason: str

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        seen = kept = 0

        def inputs(documents):
            nonlocal seen
            for doc in documents:
                seen += 1
                yield doc

        for doc in count_tokens_through(
            self, data, lambda docs: super(_CountedDedup, self).run(inputs(docs), rank, world_size)
        ):
            kept += 1
            yield doc
        if seen > kept:
            self.stat_update(f"dropped_{self.reason}", value=seen - kept)


class CountedExactDedupFilter(_CountedDedup, ExactDedupFilter):
    """datatrove's `ExactDedupFilter` as the ``exact_dedup`` stage (reason ``exact_duplicate``)."""

    name = stage_step_name("exact_dedup")  # a class attribute: datatrove names the stats at __init__
    reason = "exact_duplicate"


class CountedMinhashDedupFilter(_CountedDedup, MinhashDedupFilter):
    """datatrove's `MinhashDedupFilter` as the ``minhash_dedup`` stage (reason ``near_duplicate``)."""

    name = stage_step_name("minhash_dedup")
    reason = "near_duplicate"


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


def document_id_key(doc: Document) -> str:
    """What the corpus-wide id check compares: a reader rejects an id seen earlier in its own task, and this
    key, through datatrove's exact-dedup signatures, finds the ids that two tasks both kept."""
    return doc.id
