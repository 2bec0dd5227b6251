"""Searching a product corpus and scoring the rankings: what the search models are measured with.

runs     `Ranking`: per query, products in order with their scores
metrics  nDCG@10 with the ESCI gains, MRR@10, Recall@100 (ir-measures), and the ESCI task-1 nDCG of each
         judged list reordered
bm25     the lexical baseline (bm25s)
dense    `DenseIndex`: normalised embeddings with ids, searched exactly (numpy, or faiss when installed);
         saved as parquet (`id`, `embedding`) with its faiss index beside it
fusion   reciprocal-rank fusion of several rankings (the hybrid)
rerank   reordering each query's top products with a cross-encoder
"""

from .bm25 import Bm25Retriever
from .dense import DenseIndex, encode_texts
from .fusion import reciprocal_rank_fusion
from .metrics import RETRIEVAL_METRICS, judged_list_ndcg, retrieval_metrics
from .rerank import rerank
from .runs import Ranking

__all__ = [
    "RETRIEVAL_METRICS",
    "Bm25Retriever",
    "DenseIndex",
    "Ranking",
    "encode_texts",
    "judged_list_ndcg",
    "reciprocal_rank_fusion",
    "rerank",
    "retrieval_metrics",
]
