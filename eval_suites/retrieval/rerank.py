"""Reordering each query's top products with a cross-encoder (sentence-transformers `CrossEncoder`)."""

from __future__ import annotations

from .runs import Ranking

__all__ = ["rerank"]


def rerank(
    model, ranking: Ranking, queries: dict[str, str], texts: dict[str, str], top: int = 100,
    batch_size: int = 32,
) -> Ranking:  # fmt: skip
    """Each query's first `top` products scored by `model` on (query, product text), best first."""
    pairs, owners = [], []
    for query, results in ranking.items():
        for product, _ in results[:top]:
            pairs.append((queries[query], texts[product]))
            owners.append((query, product))
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False) if pairs else []
    reranked = Ranking({query: [] for query in ranking})
    for (query, product), score in zip(owners, scores):
        reranked[query].append((product, float(score)))
    for query in reranked:
        reranked[query].sort(key=lambda item: (-item[1], item[0]))
    return reranked
