"""Throughput of the curation pipeline: MB/s per core for each stage and for the whole run.

Speeds are megabytes of input text per second of this process's CPU time (`time.process_time`), i.e.
per core, which stays meaningful while other jobs load the machine; wall-clock figures are printed too,
with a plain ``str.split`` pass over the same text as the in-process reference. Rows:

- each stage alone over every document;
- "filters + classifier": quality -> classifier -> language -> PII chained as the pipeline runs them
  (each stage sees only what the previous kept), on the input bytes (target >= 10 MB/s per core), and
  the same chain without language id (FineFineWeb derives from FineWeb, already English-filtered);
- MinHash signatures as the pipeline computes them, and datatrove's spaCy-based steps (Gopher quality,
  its own MinHash signature step) for comparison, on a subset since they are slow;
- the whole pipeline through LocalPipelineExecutor with one worker (executors, intermediate shards,
  exact and MinHash dedup, report): input MB per CPU second of the main process plus its wall time.

Documents: the shared-data pool (listings, reviews, news, Wikipedia, web passages) plus the full
general_text documents, or the embedded sample corpus when ../shared/data is absent.

    .venv/bin/python bench/bench_curation.py --out runs/bench-curation
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from datatrove.data import Document

from curation.classifier import TrainSettings, train_classifier
from curation.config import MinhashConfig, config_from_dict
from curation.run import run_pipeline
from curation.steps import (
    MODEL_BATCH_SIZE,
    ClassifierConfig,
    DatatroveQualityFilter,
    EcomClassifierFilter,
    LanguageFilter,
    PIIScrubber,
    QualityFilter,
    WhitespaceMinhashSignature,
    exact_dedup_key,
)
from curation.text import TokenCounter

WORDS = TokenCounter("words")


def load_texts(shared_data: Path, limit_mb: float) -> tuple[list[str], list[bool], str]:
    """Benchmark texts, their e-commerce labels (to train a classifier) and where they come from."""
    if shared_data.is_dir():
        import random

        import pyarrow.parquet as pq

        from curation.pool import load_shared_pool

        pool = load_shared_pool(shared_data, max_per_source=8000)
        texts, labels = [e.text for e in pool], [e.is_ecommerce for e in pool]
        general = pq.read_table(shared_data / "general_text/documents.parquet", columns=["text"]).column(
            "text"
        )
        texts += general.to_pylist()
        labels += [False] * len(general)
        order = list(range(len(texts)))
        random.Random(0).shuffle(order)
        texts, labels = [texts[i] for i in order], [labels[i] for i in order]
        origin = "shared-data pool + full general_text documents, shuffled"
    else:
        from rexbert_core.sample_corpus import sample_documents

        docs = sample_documents()
        texts, labels = [d["text"] for d in docs], [d["domain"] == "ecommerce" for d in docs]
        origin = "embedded sample corpus"
    budget, used = limit_mb * 1e6, 0
    for n, text in enumerate(texts):
        used += len(text.encode())
        if used > budget:
            return texts[:n], labels[:n], origin
    return texts, labels, origin


def megabytes(texts) -> float:
    return sum(len(t.encode()) for t in texts) / 1e6


def as_documents(texts: list[str]) -> list[Document]:
    return [Document(text=t, id=str(i), metadata={"token_count": WORDS(t)}) for i, t in enumerate(texts)]


def as_check(step) -> Callable[[Document], bool]:
    """One stage as a function of a document, False when the stage drops it (resolved once per stage,
    so the timed loop pays no dispatch per document)."""
    if hasattr(step, "scrub"):

        def scrubbed(doc: Document) -> bool:
            doc.text = step.scrub(doc.text)[0]
            return True

        return scrubbed
    if hasattr(step, "filter"):

        def filtered(doc: Document) -> bool:
            result = step.filter(doc)
            return result[0] if isinstance(result, tuple) else bool(result)

        return filtered

    def called(doc: Document) -> bool:
        step(doc)
        return True

    return called


def measure(steps: list, documents: list[Document]) -> dict:
    """CPU and wall seconds to push fresh copies of `documents` through `steps` in order.

    Blocks of `MODEL_BATCH_SIZE` documents go through one stage after the other, as in the pipeline,
    where the model stages take that many documents at a time from the stage before.
    """
    fresh = copy.deepcopy(documents)
    checks = [as_check(step) for step in steps]
    cpu, wall = time.process_time(), time.perf_counter()
    kept = 0
    for start in range(0, len(fresh), MODEL_BATCH_SIZE):
        block = fresh[start : start + MODEL_BATCH_SIZE]
        for check in checks:
            block = [doc for doc in block if check(doc)]
        kept += len(block)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return throughput(megabytes(d.text for d in documents), cpu, wall, len(documents), kept)


def throughput(size: float, cpu: float, wall: float, docs_in: int, docs_kept: int) -> dict:
    """One result row: megabytes, seconds and megabytes per CPU / wall second."""
    return {
        "megabytes": size,
        "cpu_s": cpu,
        "wall_s": wall,
        "mb_per_cpu_s": size / cpu,
        "mb_per_wall_s": size / wall,
        "docs_in": docs_in,
        "docs_kept": docs_kept,
    }


def minhash_signature(step_class, settings: MinhashConfig):
    """A callable computing one document's MinHash signature with the given datatrove signature step."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig as Config

    config = Config(
        n_grams=settings.n_grams,
        num_buckets=settings.num_buckets,
        hashes_per_bucket=settings.hashes_per_bucket,
    )
    step = step_class(tempfile.mkdtemp(), config)

    def signature(doc: Document) -> None:
        shingles = step.get_shingles(doc.text)
        if shingles.size:
            step.get_signature(shingles)

    return signature


def full_pipeline(texts: list[str], model: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        with data.open("w", encoding="utf-8") as handle:
            for i, text in enumerate(texts):
                handle.write(json.dumps({"id": str(i), "text": text}) + "\n")
        config = config_from_dict(
            {
                "output_dir": str(Path(tmp) / "out"),
                "tasks": 1,
                "workers": 1,
                "progress": False,
                "sources": [{"name": "bench", "path": str(data)}],
                "stages": {"classifier": {"model": str(model), "threshold": 0.5}},
            }
        )
        cpu, wall = time.process_time(), time.perf_counter()
        report = run_pipeline(config)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return throughput(megabytes(texts), cpu, wall, len(texts), report["totals"]["docs_kept"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", default="../shared/data")
    parser.add_argument("--out", default="runs/bench-curation")
    parser.add_argument("--mb", type=float, default=10.0, help="megabytes of text for the fast stages")
    parser.add_argument("--slow-mb", type=float, default=0.5, help="megabytes for the spaCy-based steps")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    texts, labels, origin = load_texts(Path(args.shared_data), args.mb)
    documents = as_documents(texts)
    model = out / "bench_ecom.bin"
    train_classifier(texts[::2], labels[::2], model, TrainSettings(threads=1))  # 1 thread: reproducible

    quality, pii = QualityFilter(token_counter=WORDS), PIIScrubber(token_counter=WORDS)
    classifier = EcomClassifierFilter(ClassifierConfig(model=str(model), threshold=0.5), token_counter=WORDS)
    language = LanguageFilter(token_counter=WORDS)
    rows = {"str.split (reference)": measure([lambda doc: doc.text.split()], documents)}
    for name, step in {
        "quality (fast heuristics)": quality,
        "classifier (doc level)": classifier,
        "classifier (doc + line level)": EcomClassifierFilter(
            ClassifierConfig(model=str(model), threshold=0.5, line_level=True), token_counter=WORDS
        ),
        "language (lid.176.ftz)": language,
        "pii": pii,
        "exact dedup key": exact_dedup_key,
    }.items():
        rows[name] = measure([step], documents)
    rows["filters + classifier (quality > classifier > language > pii)"] = measure(
        [quality, classifier, language, pii], documents
    )
    rows["filters + classifier without language id (quality > classifier > pii)"] = measure(
        [quality, classifier, pii], documents
    )
    slow = as_documents(load_texts(Path(args.shared_data), args.slow_mb)[0])
    rows["datatrove gopher_quality (spaCy words)"] = measure(
        [DatatroveQualityFilter(filter_name="gopher_quality", token_counter=WORDS)], slow
    )
    from datatrove.pipeline.dedup import MinhashDedupSignature

    rows["MinHash signature (pipeline step: byte words, numpy shingles)"] = measure(
        [minhash_signature(WhitespaceMinhashSignature, MinhashConfig())], slow
    )
    rows["datatrove MinHash signature (spaCy words)"] = measure(
        [minhash_signature(MinhashDedupSignature, MinhashConfig())], slow
    )
    rows["full pipeline, 1 worker"] = full_pipeline(texts, model)

    reference = rows["str.split (reference)"]["mb_per_cpu_s"]
    for row in rows.values():
        row["ratio_to_reference"] = row["mb_per_cpu_s"] / reference
    result = {
        "documents": len(texts),
        "megabytes": megabytes(texts),
        "origin": origin,
        "target_mb_per_s_per_core": 10.0,
        "stages": rows,
    }
    (out / "bench_curation.json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# Curation throughput: {len(texts):,} documents, {megabytes(texts):.1f} MB ({origin})",
        "",
        "MB/s per core = input MB per CPU second of this process.",
        "",
        "| stage | MB | MB/s per core | MB/s wall | docs in | docs kept | x str.split |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {r['megabytes']:.2f} | {r['mb_per_cpu_s']:.1f} | {r['mb_per_wall_s']:.1f} "
        f"| {r['docs_in']} "
        f"| {r['docs_kept']} | {r['ratio_to_reference']:.3f} |"
        for name, r in rows.items()
    ]
    (out / "bench_curation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
