"""`retrieval`: a bi-encoder for product search, trained with sentence-transformers' `SentenceTransformerTrainer`.

Training examples are (query, an Exact product, negatives): first the query's own products judged Irrelevant
or Complement (the hardest negatives there are: a person read them and said no), then products mined from
the training corpus by sentence-transformers' `mine_hard_negatives` with the starting model, never one the
query judged Exact or Substitute (the miner only knows the one positive; a second Exact product mined as a
negative would teach the model the opposite of the judgment). The loss is `CachedMultipleNegativesRankingLoss`:
every other example's products in the batch are negatives too, and its gradient cache makes the batch as
large as `train.batch_size` says at the memory of `mini_batch_size`; `matryoshka_dims` wraps it in
`MatryoshkaLoss`. Evaluated over the test split's whole product corpus against BM25 (`search_eval`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import datasets
import numpy as np

from eval_suites.data.esci_search import SearchCollection

from .config import RetrievalConfig, TrainSettings
from .data import esci_splits
from .outputs import TaskOutput
from .search_eval import methods_markdown, plot_methods, score_rankings, search_rankings
from .training import model_context, quiet_miner, train_resumably, trainer_arguments

__all__ = ["bi_encoder", "run", "train_bi_encoder", "training_examples"]


def bi_encoder(model_path: str, max_seq_length: int | None = 128, pooling: str = "mean"):
    """The encoder of `model_path` (RexBERT, ModernBERT or any BERT-style checkpoint) with `pooling`; an
    existing sentence-transformers model is loaded as it is."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    from eval_suites.models import expected_new_weights, load_tokenizer, register_model_types

    register_model_types()
    load_tokenizer(model_path)  # fail early, with a clear message, when the tokenizer is unusable
    from pathlib import Path

    if (Path(str(model_path)) / "modules.json").is_file():
        model = SentenceTransformer(str(model_path), device="cpu" if not _cuda() else None)
    else:
        with expected_new_weights():  # a masked-LM checkpoint loaded as a bare encoder leaves its head out
            encoder = Transformer(str(model_path))
        model = SentenceTransformer(modules=[encoder, Pooling(encoder.get_embedding_dimension(), pooling)])
    context = model_context(model[0].auto_model.config)
    model.max_seq_length = min(max_seq_length or context, context)  # saved with the model (its tokenizer)
    return model


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def training_examples(
    train: SearchCollection, model, judged_negatives: int, mined_negatives: int, seed: int = 0
) -> datasets.Dataset:
    """(anchor, positive, negative_1 ... negative_n) for every (query, Exact product) of `train` (see the
    module docstring); n = judged + mined negatives, filled up with products the query did not judge E or S
    where the query has fewer judged negatives."""
    from sentence_transformers.util import mine_hard_negatives

    texts, rng = train.text_of(), np.random.default_rng(seed)
    corpus = list(texts.values())
    rows, excluded = [], {}
    for query_id, group in train.judgments.groupby("query_id", sort=True):
        query = group["query"].iloc[0]
        kept = set(texts[p] for p in group.loc[group["esci_label"].isin(["E", "S"]), "product_id"])
        excluded.setdefault(query, set()).update(kept)
        judged = [
            texts[p] for label in ("I", "C") for p in group.loc[group["esci_label"] == label, "product_id"]
        ]
        for positive in group.loc[group["esci_label"] == "E", "product_id"]:
            rows.append({"anchor": query, "positive": texts[positive], "judged": judged[:judged_negatives]})
    if not rows:
        raise ValueError("no training query has an Exact product to learn from")
    mined: dict[tuple[str, str], list[str]] = {}
    if mined_negatives:
        pairs = datasets.Dataset.from_dict(
            {"anchor": [r["anchor"] for r in rows], "positive": [r["positive"] for r in rows]}
        )
        wanted = min(len(corpus) - 1, mined_negatives + max(len(e) for e in excluded.values()))
        with quiet_miner():
            tuples = mine_hard_negatives(
                pairs, model, corpus=corpus, num_negatives=wanted, sampling_strategy="top",
                output_format="n-tuple", batch_size=64, verbose=False,
            )  # fmt: skip
        for record in tuples:
            found = [record[f"negative_{i}"] for i in range(1, wanted + 1)]
            mined[(record["anchor"], record["positive"])] = found
    columns: dict[str, list[str]] = {"anchor": [], "positive": []}
    width = judged_negatives + mined_negatives
    for index in range(1, width + 1):
        columns[f"negative_{index}"] = []
    for row in rows:
        banned = excluded[row["anchor"]] | {row["positive"]}
        extra = [t for t in mined.get((row["anchor"], row["positive"]), []) if t not in banned]
        negatives = row["judged"] + [t for t in extra if t not in row["judged"]][:mined_negatives]
        while len(negatives) < width:  # too few judged or mined: any product the query did not judge E/S
            candidate = corpus[int(rng.integers(len(corpus)))]
            if candidate not in banned and candidate not in negatives:
                negatives.append(candidate)
        columns["anchor"].append(row["anchor"])
        columns["positive"].append(row["positive"])
        for index, negative in enumerate(negatives[:width], start=1):
            columns[f"negative_{index}"].append(negative)
    return datasets.Dataset.from_dict(columns)


def train_bi_encoder(
    model, examples: datasets.Dataset, settings: TrainSettings, output_dir: str, *,
    mini_batch_size: int = 16, matryoshka_dims: Sequence[int] = (), checkpoint: str | None = None,
) -> None:  # fmt: skip
    """Fine-tune `model` in place on `examples` (see the module docstring)."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MatryoshkaLoss,
    )
    from sentence_transformers.training_args import BatchSamplers

    loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size, show_progress_bar=False)
    if matryoshka_dims:
        full = model.get_embedding_dimension()
        dims = sorted({full, *[d for d in matryoshka_dims if d < full]}, reverse=True)
        loss = MatryoshkaLoss(model, loss, matryoshka_dims=dims)
    args = trainer_arguments(
        settings, output_dir, SentenceTransformerTrainingArguments, batch_sampler=BatchSamplers.NO_DUPLICATES
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=examples, loss=loss)
    train_resumably(trainer, checkpoint)


def run(model_path: str, data: Sequence[str], config: RetrievalConfig, output: TaskOutput) -> dict:
    """Train, ship and evaluate (see the module docstring); returns `results.json`'s content."""
    collection, train, test = esci_splits(data, config.data)
    model = bi_encoder(model_path, config.max_seq_length, config.pooling)
    baseline = score_rankings(search_rankings(test, bi_encoder=model, top_k=config.top_k), test)
    examples = training_examples(
        train, model, config.judged_negatives, config.mined_negatives, config.train.seed
    )
    started = time.perf_counter()
    train_bi_encoder(
        model, examples, config.train, str(output.checkpoints), mini_batch_size=config.mini_batch_size,
        matryoshka_dims=config.matryoshka_dims, checkpoint=output.last_checkpoint(),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    model.save(str(output.staging()))
    output.ship({"task": "retrieval", "base_model": str(model_path)})
    model = bi_encoder(str(output.model), config.max_seq_length)  # scored as shipped: what users load
    scores = score_rankings(search_rankings(test, bi_encoder=model, top_k=config.top_k), test)
    scores["dense@base"] = baseline["dense"]  # the encoder before fine-tuning, for reference
    results = {
        **scores,
        "task": "retrieval",
        "product_template": collection.product_template,
        "data": _data_record(data, collection, train, test),
        "training": {"examples": len(examples), "negatives_per_example": len(examples.column_names) - 2,
                     "seconds": round(seconds, 1), "loss": "CachedMultipleNegativesRankingLoss"},
    }  # fmt: skip
    output.write_card_record({"task": "retrieval", "base_model": str(model_path), "results": results})
    plot_methods(scores, output.root / "results.png", "retrieval on held-out queries")
    output.write_results(results, "# Retrieval on held-out queries\n\n" + methods_markdown(scores) + "\n")
    return results


def _data_record(data: Sequence[str], collection, train, test) -> dict:
    from pathlib import Path

    return {
        "sources": [Path(str(d)).name for d in data],
        "train_queries": int(train.judgments["query_id"].nunique()),
        "test_queries": int(test.judgments["query_id"].nunique()),
        "test_products": len(test.products),
        **collection.counts,
    }
