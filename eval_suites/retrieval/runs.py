"""`Ranking`: what a retrieval method returns for a set of queries."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["Ranking"]


class Ranking(dict):
    """query id -> [(product id, score), ...], best first. A plain dict, so it is easy to build and to read."""

    def top(self, k: int) -> Ranking:
        return Ranking({query: results[:k] for query, results in self.items()})

    def scored_docs(self) -> Iterator[tuple[str, str, float]]:
        """(query id, product id, score) triples, the form ir-measures reads."""
        for query, results in self.items():
            for product, score in results:
                yield query, product, float(score)
