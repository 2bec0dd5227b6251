"""Reciprocal-rank fusion (Cormack, Clarke and Buettcher 2009): score(d) = sum over rankings of 1 / (k + rank).

Written here rather than taken from ranx: it is five lines, and ranx brings numba and its compile time into
every process that imports the evaluation."""

from __future__ import annotations

from collections import defaultdict

from .runs import Ranking

__all__ = ["reciprocal_rank_fusion"]


def reciprocal_rank_fusion(rankings: list[Ranking], k: int = 60, depth: int = 100) -> Ranking:
    """The fused ranking of each query's top `depth` products (k = 60, the paper's constant)."""
    fused = Ranking()
    for query in set().union(*rankings):
        scores: dict[str, float] = defaultdict(float)
        for ranking in rankings:
            for rank, (product, _) in enumerate(ranking.get(query, [])[:depth], start=1):
                scores[product] += 1.0 / (k + rank)
        fused[query] = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:depth]
    return fused
