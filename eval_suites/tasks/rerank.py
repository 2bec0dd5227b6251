"""`rerank`: a cross-encoder that scores (query, product) pairs, trained with `CrossEncoderTrainer`.

The loss is listwise by default: `LambdaLoss` with the NDCG-Loss2++ weighting over each training query's
judged products. It is the one loss here that optimises the metric the task is scored with, nDCG with the ESCI
gains; sentence-transformers' LambdaLoss takes gain = 2^label - 1, so the labels are log2(1 + gain), which makes
its gains exactly E 1, S 0.1, C 0.01, I 0. `loss: bce` is the graded pointwise alternative
(`BinaryCrossEntropyLoss` with the gain as target): simpler, and it sees every pair on its own, but a
Substitute at 0.1 and a Complement at 0.01 are then both "almost 0" to it.

`mined_negatives: N` adds to each training query's list N products BM25 ranks high for it that it did not
judge, as label 0: a reranker trained on judged lists alone never sees the unrelated products a first stage's
top 100 is full of. Off by default: measured on the generated 2,000-query set with the demo encoder it did not
help (rerank@bm25 nDCG@10 0.050 with 8, 0.058 without) and doubled the training time (289 s against 140 s).

The reranker reorders BM25's top `top_k` (`rerank@bm25`) and, given a bi-encoder (`retriever`), the dense top
`top_k` (`rerank@dense`), next to the first-stage methods themselves; and each test query's judged list
(ESCI task 1's nDCG).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import datasets
import pandas as pd

from eval_suites.data.esci_search import NDCG_GAINS, SearchCollection
from eval_suites.retrieval import judged_list_ndcg

from .config import RerankConfig, TrainSettings
from .data import esci_splits
from .outputs import TaskOutput
from .search_eval import methods_markdown, plot_methods, score_rankings, search_rankings
from .training import model_context, train_resumably, trainer_arguments

__all__ = [
    "LAMBDA_LABELS",
    "cross_encoder",
    "judged_scores",
    "run",
    "train_cross_encoder",
    "training_lists",
    "with_mined_negatives",
]

LAMBDA_LABELS = {label: math.log2(1.0 + gain) for label, gain in NDCG_GAINS.items()}


def cross_encoder(model_path: str, max_length: int | None = 192):
    """A cross-encoder with one output on `model_path`: a fresh head on an encoder, or a trained one as it is."""
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import AutoConfig

    from eval_suites.models import expected_new_weights, load_tokenizer, register_model_types

    register_model_types()
    load_tokenizer(model_path)
    context = model_context(AutoConfig.from_pretrained(str(model_path)))
    length = min(max_length or context, context)  # never past the positions the model was trained with
    with expected_new_weights():  # a masked-LM checkpoint gets a new head and leaves its MLM head out
        return CrossEncoder(str(model_path), num_labels=1, max_length=length)


def with_mined_negatives(train: SearchCollection, count: int) -> pd.DataFrame:
    """The judgments plus, per query, the first `count` products of BM25's ranking over the training corpus
    that the query did not judge, labelled I (gain 0): what a first stage hands the reranker besides the
    judged products."""
    if count == 0:
        return train.judgments
    from eval_suites.retrieval import Bm25Retriever

    texts, judged = train.text_of(), train.judgments
    judged_by_query = judged.groupby("query_id")["product_id"].apply(set).to_dict()
    queries = train.queries
    depth = count + max(len(products) for products in judged_by_query.values())
    ranking = Bm25Retriever(list(texts), list(texts.values())).search(queries, depth)
    rows = [
        {"query_id": q, "query": queries[q], "product_id": p, "esci_label": "I", "split": "train"}
        for q, results in ranking.items()
        for p in [p for p, _ in results if p not in judged_by_query[q]][:count]
    ]
    return pd.concat([judged, pd.DataFrame(rows, columns=judged.columns)], ignore_index=True)


def training_lists(
    train: SearchCollection, loss: str, max_products: int, seed: int = 0, mined_negatives: int = 0
) -> datasets.Dataset:
    """`lambda`: (query, docs, labels) per query, its judged products and `mined_negatives` unjudged ones
    (`with_mined_negatives`), at most `max_products` (a seeded choice); `bce`: (query, doc, label) per pair
    with the gain as label."""
    texts = train.text_of()
    judged = with_mined_negatives(train, mined_negatives).sample(frac=1.0, random_state=seed)  # seeded order
    if loss == "bce":
        return datasets.Dataset.from_dict(
            {
                "query": judged["query"].tolist(),
                "doc": [texts[p] for p in judged["product_id"]],
                "label": judged["esci_label"].map(NDCG_GAINS).astype(float).tolist(),
            }
        )
    columns: dict[str, list] = {"query": [], "docs": [], "labels": []}
    for _, group in judged.groupby("query_id", sort=True):
        group = group.head(max_products)
        columns["query"].append(group["query"].iloc[0])
        columns["docs"].append([texts[p] for p in group["product_id"]])
        columns["labels"].append(group["esci_label"].map(LAMBDA_LABELS).astype(float).tolist())
    return datasets.Dataset.from_dict(columns)


def train_cross_encoder(
    model,
    examples: datasets.Dataset,
    loss: str,
    settings: TrainSettings,
    output_dir: str,
    checkpoint: str | None = None,
) -> None:
    """Fine-tune `model` in place (see the module docstring)."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, LambdaLoss

    objective = LambdaLoss(model) if loss == "lambda" else BinaryCrossEntropyLoss(model)
    args = trainer_arguments(settings, output_dir, CrossEncoderTrainingArguments)
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=examples, loss=objective)
    train_resumably(trainer, checkpoint)


def judged_scores(model, test: SearchCollection, batch_size: int = 32) -> pd.DataFrame:
    """Every judged (query, product) of `test` with the model's score (for ESCI task 1's nDCG)."""
    texts = test.text_of()
    pairs = list(zip(test.judgments["query"], (texts[p] for p in test.judgments["product_id"])))
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False)
    return test.judgments.assign(score=[float(s) for s in scores])


def run(model_path: str, data: Sequence[str], config: RerankConfig, output: TaskOutput) -> dict:
    """Train, ship and evaluate (see the module docstring); returns `results.json`'s content."""
    collection, train, test = esci_splits(data, config.data)
    model = cross_encoder(model_path, config.max_seq_length)
    zero_shot_task1 = judged_list_ndcg(judged_scores(model, test))
    examples = training_lists(
        train, config.loss, config.max_products_per_query, config.train.seed, config.mined_negatives
    )
    started = time.perf_counter()
    train_cross_encoder(
        model, examples, config.loss, config.train, str(output.checkpoints), output.last_checkpoint()
    )
    seconds = time.perf_counter() - started
    model.save(str(output.staging()))
    output.ship({"task": "rerank", "base_model": str(model_path)})
    model = cross_encoder(str(output.model), config.max_seq_length)  # scored as shipped: what users load
    retriever = None
    if config.retriever:
        from .retrieval import bi_encoder

        retriever = bi_encoder(config.retriever)
    scores = score_rankings(
        search_rankings(test, bi_encoder=retriever, cross_encoder=model, top_k=config.top_k), test
    )
    task1 = {"reranker": judged_list_ndcg(judged_scores(model, test)), "reranker@base": zero_shot_task1}
    task1["bm25"] = judged_list_ndcg(_bm25_judged_scores(test))
    results = {
        **scores,
        "task": "rerank",
        "esci_task1_ndcg": task1,
        "product_template": collection.product_template,
        "data": {"train_queries": int(train.judgments["query_id"].nunique()),
                 "test_queries": int(test.judgments["query_id"].nunique()), **collection.counts},
        "training": {"examples": len(examples), "loss": config.loss, "seconds": round(seconds, 1)},
    }  # fmt: skip
    output.write_card_record({"task": "rerank", "base_model": str(model_path), "results": results})
    plot_methods(scores, output.root / "results.png", "reranking on held-out queries")
    markdown = (
        "# Reranking on held-out queries\n\n"
        + methods_markdown(scores)
        + "\n\nESCI task 1 (each judged list "
        f"reordered), nDCG: reranker {task1['reranker']:.4f}, BM25 {task1['bm25']:.4f}, the encoder before "
        f"fine-tuning {task1['reranker@base']:.4f}\n"
    )
    output.write_results(results, markdown)
    return results


def _bm25_judged_scores(test: SearchCollection) -> pd.DataFrame:
    """BM25 scores of each judged (query, product), the baseline of the task-1 measure."""
    from eval_suites.retrieval import Bm25Retriever

    texts, rows = test.text_of(), []
    for query_id, group in test.judgments.groupby("query_id", sort=False):
        ids = list(group["product_id"])
        found = dict(
            Bm25Retriever(ids, [texts[p] for p in ids]).search({query_id: group["query"].iloc[0]}, len(ids))[
                query_id
            ]
        )
        rows.append(group.assign(score=[found.get(p, 0.0) for p in ids]))
    return pd.concat(rows, ignore_index=True)
