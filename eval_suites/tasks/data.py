"""The data every ESCI task starts from: the collection split by query, capped by the settings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eval_suites.data.esci_search import SearchCollection, load_search_collection

from .config import DataSettings

__all__ = ["esci_splits", "keep_queries"]


def keep_queries(collection: SearchCollection, limit: int | None, seed: int) -> SearchCollection:
    """At most `limit` of the collection's queries (a seeded choice), with the products they judge."""
    queries = sorted(collection.judgments["query_id"].unique())
    if limit is None or len(queries) <= limit:
        return collection
    chosen = set(np.random.default_rng(seed).choice(queries, size=limit, replace=False).tolist())
    judged = collection.judgments[collection.judgments["query_id"].isin(chosen)].reset_index(drop=True)
    products = collection.products[collection.products["product_id"].isin(set(judged["product_id"]))]
    return SearchCollection(
        judged,
        products.reset_index(drop=True),
        collection.product_template,
        collection.sources,
        collection.counts,
    )


def esci_splits(
    specs: Sequence[str], settings: DataSettings
) -> tuple[SearchCollection, SearchCollection, SearchCollection]:
    """(the whole collection, its train split, its test split), each split capped by the settings."""
    collection = load_search_collection(
        specs,
        product_template=settings.product_template,
        locale=settings.locale,
        small_version=settings.small_version,
        test_fraction=settings.test_fraction,
        seed=settings.seed,
        hub_split=settings.hub_split,
    )
    train = keep_queries(collection.split("train"), settings.max_train_queries, settings.seed)
    test = keep_queries(collection.split("test"), settings.max_test_queries, settings.seed)
    return collection, train, test
