"""`rexbert search`: the top products of a catalogue index for a query, optionally reranked.

    rexbert search --index runs/catalogue-index "wireless earbuds for running"
    rexbert search --index runs/catalogue-index --rerank runs/rerank/model --top 5 "usb c charger 65w"

The query is embedded with the model the index was built with (`index.json`), the index searched exactly
(`DenseIndex`), and with `--rerank` the first `--candidates` products are reordered by the cross-encoder.
Prints rank, score, id and the start of each product's text (`--json`: one JSON object per result).
"""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("query", nargs="+", help="the query (several words are one query)")
    parser.add_argument("--index", required=True, help="an index folder written by `rexbert embed`")
    parser.add_argument(
        "--rerank", help="a cross-encoder (`rexbert finetune rerank`'s model) to reorder with"
    )
    parser.add_argument("--top", type=int, default=10, help="results shown (default 10)")
    parser.add_argument("--candidates", type=int, default=100, help="products reranked (default 100)")
    parser.add_argument(
        "--model", help="the bi-encoder for the query (default: the one the index was built with)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def main(args: argparse.Namespace) -> int:
    from rexbert_core.typed_config import DataError

    from .dense import DenseIndex

    index = DenseIndex.load(args.index)
    if index.texts is None and args.rerank:
        raise DataError(f"{args.index}: the index keeps no product texts to rerank with")
    query, model_path = " ".join(args.query), args.model or index.model
    from eval_suites.tasks.retrieval import bi_encoder

    encoder = bi_encoder(model_path, index.about.get("max_seq_length"))
    depth = max(args.top, args.candidates if args.rerank else args.top)
    ranking = index.search_texts(encoder, {"q": query}, depth)
    if args.rerank:
        from eval_suites.tasks.rerank import cross_encoder

        from .rerank import rerank

        texts = dict(zip(index.ids, index.texts))
        ranking = rerank(cross_encoder(args.rerank, None), ranking, {"q": query}, texts, args.candidates)
    texts = dict(zip(index.ids, index.texts or [""] * len(index.ids)))
    for rank, (product, score) in enumerate(ranking["q"][: args.top], start=1):
        if args.json:
            print(json.dumps({"rank": rank, "score": round(score, 6), "id": product, "text": texts[product]}))
        else:
            print(f"{rank:>3}  {score:8.4f}  {product:<14}  {texts[product][:90]}")
    return 0
