"""The search models on a generated ESCI-format set: BM25, the fine-tuned bi-encoder (dense), their hybrid and
the reranker over each, with training time, as a user runs them (`rexbert finetune retrieval`, then `rerank`
with the bi-encoder as its retriever).

The set is the project's generated ESCI sample (`rexbert_core.sample_corpus.sample_esci`) at `--queries`
queries under the release's file names: real ESCI at this size cannot be had here. Its queries are built
from the products' own words (brand, product, colour), which is what BM25 is best at, so the table says how
far a model is from a strong lexical baseline on easy queries, not what it would score on ESCI.

The base model is `--model`, or the default `rexbert run`'s model trained first into the scratch folder (the
3-layer, 64-wide demo encoder: about half a minute). Both tasks train `--epochs` epochs at `--learning-rate`
(defaults for that small encoder, whose pretraining peaked at 3e-3: measured on this set, 5e-5 for one epoch,
the `default` preset's choice for real encoders, leaves its dense nDCG@10 at 0.012; 2e-3 for 3 epochs gives
0.186).

    python -m bench.bench_finetune [--queries 2000] [--model DIR] [--learning-rate 2e-3] [--epochs 3] \
        [--out outputs/bench]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

METRICS = ("ndcg@10", "mrr@10", "recall@100")


def base_model(scratch: Path) -> Path:
    from rexbert.cli import main as rexbert

    run = scratch / "run"
    if rexbert(["-q", "run", "--output", str(run), "--stop-after", "model"]) != 0:
        raise RuntimeError("the default run failed")
    return run / "model"


def write_esci(folder: Path, queries: int) -> dict:
    from eval_suites.data.esci_search import EXAMPLES_FILENAME, PRODUCTS_FILENAME
    from rexbert_core.sample_corpus.eval_sets import sample_esci

    examples, products = sample_esci(seed=11, n_queries=queries)
    folder.mkdir(parents=True, exist_ok=True)
    examples.to_parquet(folder / EXAMPLES_FILENAME, index=False)
    products.to_parquet(folder / PRODUCTS_FILENAME, index=False)
    return {"queries": queries, "judgments": len(examples), "products": len(products)}


def finetune(
    task: str, model: Path, data: Path, output: Path, preset: str, *extra: str
) -> tuple[dict, float]:
    from rexbert.cli import main as rexbert

    started = time.perf_counter()
    command = [
        "-q",
        "finetune",
        task,
        "--model",
        str(model),
        "--data",
        str(data),
        "--output",
        str(output),
        "--preset",
        preset,
    ]
    if rexbert([*command, *extra]) != 0:
        raise RuntimeError(f"rexbert finetune {task} failed")
    return json.loads((output / "results.json").read_text()), time.perf_counter() - started


def markdown(results: dict) -> str:
    lines = ["| method | nDCG@10 | MRR@10 | Recall@100 |", "|---|---:|---:|---:|"]
    for method, row in results["methods"].items():
        lines.append(f"| {method} | " + " | ".join(f"{row[m]:.4f}" for m in METRICS) + " |")
    t = results["seconds"]
    lines += [
        "",
        f"{results['data']['queries']:,} queries ({results['data']['judgments']:,} judgments, "
        f"{results['data']['products']:,} products), held-out test queries {results['test_queries']:,}; "
        f"`rexbert finetune retrieval` {t['retrieval']:.0f} s (training {t['retrieval_training']:.0f} s), "
        f"`rexbert finetune rerank` {t['rerank']:.0f} s (training {t['rerank_training']:.0f} s).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--model", type=Path, help="the base encoder (default: the default run's model)")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model = args.model or base_model(scratch)
        data = write_esci(scratch / "esci", args.queries)
        budget = [
            "--set",
            f"train.learning_rate={args.learning_rate}",
            "--set",
            f"train.epochs={args.epochs}",
        ]
        retrieval, retrieval_seconds = finetune(
            "retrieval", model, scratch / "esci", scratch / "retrieval", args.preset, *budget
        )
        rerank, rerank_seconds = finetune(
            "rerank", model, scratch / "esci", scratch / "rerank", args.preset, *budget,
            "--set", f"retriever={scratch / 'retrieval' / 'model'}",
        )  # fmt: skip
    methods = {m: retrieval[m] for m in ("bm25", "dense@base", "dense", "hybrid")}
    methods.update({m: rerank[m] for m in ("rerank@bm25", "rerank@dense")})
    results = {
        "methods": methods,
        "esci_task1_ndcg": rerank["esci_task1_ndcg"],
        "data": data,
        "test_queries": retrieval["data"]["test_queries"],
        "seconds": {
            "retrieval": retrieval_seconds,
            "retrieval_training": retrieval["training"]["seconds"],
            "rerank": rerank_seconds,
            "rerank_training": rerank["training"]["seconds"],
        },  # fmt: skip
        "model": str(args.model or "the default run's model"),
        "preset": args.preset,
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_finetune.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.out / "bench_finetune.md").write_text(table + "\n")
    from eval_suites.tasks.search_eval import plot_methods

    plot_methods(methods, args.out / "bench_finetune.png", f"generated ESCI set, {args.queries} queries")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
