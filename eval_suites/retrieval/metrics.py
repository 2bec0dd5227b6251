"""Ranking metrics for ESCI, computed by ir-measures (trec_eval's definitions).

- nDCG@10 with the ESCI gains E 1, S 0.1, C 0.01, I 0 (linear gain, log2 discount); a product nobody judged
  counts as I. ir-measures reads integer relevance, so the gains enter multiplied by 100: nDCG is a ratio of
  two sums of gains and does not change.
- MRR@10 and Recall@100 count Exact products as relevant (the ESCI paper's reading of "the product the
  shopper asked for"; S and C are partial matches that nDCG rewards).
- `judged_list_ndcg`: the ESCI task-1 measure: each query's judged products only, reordered by the model,
  nDCG over the whole list (no cutoff), so it does not depend on the rest of the corpus.

A query without any Exact product has no MRR/Recall to give; trec_eval counts it as 0 and so do these.
"""

from __future__ import annotations

import ir_measures
import pandas as pd
from ir_measures import RR, R, nDCG

from eval_suites.data.esci_search import NDCG_GAINS

from .runs import Ranking

__all__ = ["RETRIEVAL_METRICS", "judged_list_ndcg", "qrels", "retrieval_metrics"]

RETRIEVAL_METRICS = {"ndcg@10": nDCG @ 10, "mrr@10": RR(rel=100) @ 10, "recall@100": R(rel=100) @ 100}


def qrels(judgments: pd.DataFrame) -> list[ir_measures.Qrel]:
    """The judgments as ir-measures qrels (gains x 100; see the module docstring)."""
    gains = judgments["esci_label"].map(NDCG_GAINS).mul(100).round().astype(int)
    return [
        ir_measures.Qrel(str(q), str(p), int(g))
        for q, p, g in zip(judgments["query_id"], judgments["product_id"], gains)
    ]


def retrieval_metrics(ranking: Ranking, judgments: pd.DataFrame) -> dict[str, float]:
    """nDCG@10, MRR@10, Recall@100 of `ranking`, averaged over the judged queries (a query the ranking has
    no result for scores 0)."""
    run = [ir_measures.ScoredDoc(q, p, s) for q, p, s in ranking.scored_docs()]
    judged = qrels(judgments)
    per_query: dict[str, dict[str, float]] = {name: {} for name in RETRIEVAL_METRICS}
    names = {measure: name for name, measure in RETRIEVAL_METRICS.items()}
    for metric in ir_measures.iter_calc(list(RETRIEVAL_METRICS.values()), judged, run):
        per_query[names[metric.measure]][metric.query_id] = metric.value
    queries = sorted({q.query_id for q in judged})
    return {
        name: sum(values.get(q, 0.0) for q in queries) / len(queries) for name, values in per_query.items()
    }


def judged_list_ndcg(scores: pd.DataFrame) -> float:
    """ESCI task 1: mean over queries of the nDCG of the judged products ordered by `score` (columns
    `query_id`, `product_id`, `esci_label`, `score`)."""
    run = [
        ir_measures.ScoredDoc(str(q), str(p), float(s))
        for q, p, s in zip(scores["query_id"], scores["product_id"], scores["score"])
    ]
    return float(ir_measures.calc_aggregate([nDCG], qrels(scores), run)[nDCG])
