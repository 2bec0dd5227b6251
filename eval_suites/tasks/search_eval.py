"""Retrieval over a split's whole product corpus, every method scored on the same judged queries.

Methods (the keys of `results.json`): `bm25` (the lexical baseline, always), `dense` (a bi-encoder), `hybrid`
(reciprocal-rank fusion of the two), `rerank@bm25` and `rerank@dense` (a cross-encoder over each one's top
`top_k`). Metrics: nDCG@10 with the ESCI gains, MRR@10 and Recall@100 over Exact products
(`eval_suites.retrieval.metrics`). `plot_methods` draws them side by side.
"""

from __future__ import annotations

from pathlib import Path

from eval_suites.data.esci_search import SearchCollection
from eval_suites.retrieval import (
    RETRIEVAL_METRICS,
    Bm25Retriever,
    DenseIndex,
    Ranking,
    encode_texts,
    reciprocal_rank_fusion,
    rerank,
    retrieval_metrics,
)
from rexbert_core.safe_outputs import atomic_save_figure
from rexbert_core.tables import markdown_table

__all__ = ["METHODS", "methods_markdown", "plot_methods", "search_rankings"]

METHODS = ("bm25", "dense", "hybrid", "rerank@bm25", "rerank@dense")


def search_rankings(
    test: SearchCollection, *, bi_encoder=None, cross_encoder=None, top_k: int = 100, batch_size: int = 32
) -> dict[str, Ranking]:
    """Every method that the given models allow, on `test`'s queries over `test`'s products."""
    queries, texts = test.queries, test.text_of()
    ids = list(texts)
    rankings = {"bm25": Bm25Retriever(ids, [texts[i] for i in ids]).search(queries, top_k)}
    if bi_encoder is not None:
        index = DenseIndex(ids, encode_texts(bi_encoder, [texts[i] for i in ids], batch_size))
        rankings["dense"] = index.search_texts(bi_encoder, queries, top_k, batch_size)
        rankings["hybrid"] = reciprocal_rank_fusion([rankings["bm25"], rankings["dense"]], depth=top_k)
    if cross_encoder is not None:
        for first in ("bm25", "dense"):
            if first in rankings:
                rankings[f"rerank@{first}"] = rerank(
                    cross_encoder, rankings[first], queries, texts, top_k, batch_size
                )
    return rankings


def score_rankings(rankings: dict[str, Ranking], test: SearchCollection) -> dict[str, dict[str, float]]:
    return {method: retrieval_metrics(ranking, test.judgments) for method, ranking in rankings.items()}


def methods_markdown(scores: dict[str, dict[str, float]]) -> str:
    """A table of method x metric, the best of each metric in bold."""
    metrics = list(RETRIEVAL_METRICS)
    best = {m: max(row[m] for row in scores.values()) for m in metrics}
    rows = [
        [method, *(f"**{row[m]:.4f}**" if row[m] == best[m] else f"{row[m]:.4f}" for m in metrics)]
        for method, row in scores.items()
    ]
    return markdown_table(["method", *metrics], rows)


def plot_methods(scores: dict[str, dict[str, float]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, methods = list(RETRIEVAL_METRICS), list(scores)
    figure, axes = plt.subplots(figsize=(1.6 + 1.3 * len(methods), 3.4))
    width = 0.8 / len(metrics)
    for index, metric in enumerate(metrics):
        positions = [m + index * width for m in range(len(methods))]
        axes.bar(positions, [scores[method][metric] for method in methods], width, label=metric)
    axes.set_xticks([m + width * (len(metrics) - 1) / 2 for m in range(len(methods))])
    axes.set_xticklabels(methods, fontsize=8)
    axes.set_ylim(0, 1)
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    atomic_save_figure(figure, path, dpi=110)
    plt.close(figure)
    return path
