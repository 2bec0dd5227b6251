"""The lexical baseline: Okapi BM25 over the product texts, by bm25s (sparse matrices; its default Lucene
variant: idf log(1 + (N - df + 0.5) / (df + 0.5)), k1 1.5, b 0.75, no constant (k1 + 1) factor), on lower-cased
words of two or more characters with English stop words removed, no stemming."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import bm25s
import numpy as np

logging.getLogger("bm25s").setLevel(logging.INFO)  # its per-index debug lines are noise in a run's log

from .runs import Ranking

__all__ = ["Bm25Retriever"]


class Bm25Retriever:
    """BM25 over `texts` (aligned with `ids`)."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str]):
        self.ids = np.asarray(list(ids), dtype=object)
        self.retriever = bm25s.BM25()
        self.retriever.index(
            bm25s.tokenize(list(texts), stopwords="en", show_progress=False), show_progress=False
        )

    def search(self, queries: dict[str, str], k: int = 100) -> Ranking:
        """Each query's top `k` products with their BM25 scores (products sharing no word are left out)."""
        k = min(k, len(self.ids))
        tokens = bm25s.tokenize(list(queries.values()), stopwords="en", show_progress=False)
        documents, scores = self.retriever.retrieve(tokens, k=k, show_progress=False)
        ranking = Ranking()
        for query, rows, row_scores in zip(queries, documents, scores):
            ranking[query] = [(str(self.ids[i]), float(s)) for i, s in zip(rows, row_scores) if s > 0]
        return ranking
