"""Evaluate the e-commerce classifier and the whole curation pipeline on the shared-data pool.

1. Assemble the labelled pool from ../shared/data (curation.pool), train the fastText classifier on
   70%, pick the threshold on 10%, report precision / recall for e-commerce text on the held-out 20%
   (targets: both >= 0.95), overall and per source.
2. Write the held-out part as one jsonl source per pool source and run the whole pipeline on it
   (quality, language, classifier, PII, exact + MinHash dedup) to report the kept fraction per source.

Writes ``<out>/classifier_eval.json`` and ``<out>/classifier_eval.md``.

    .venv/bin/python bench/eval_curation_classifier.py --shared-data ../shared/data --out runs/curation-eval
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from curation.classifier import TrainSettings, split_examples, train_and_evaluate
from curation.config import config_from_dict
from curation.pool import ECOMMERCE_SOURCES, load_shared_pool
from curation.run import run_pipeline


def write_held_out_sources(pool, test_indices, folder: Path) -> list[dict]:
    """One jsonl file per pool source with its held-out examples; returns the pipeline source configs."""
    folder.mkdir(parents=True, exist_ok=True)
    by_source: dict[str, list[str]] = {}
    for i in test_indices:
        by_source.setdefault(pool[i].source, []).append(pool[i].text)
    sources = []
    for name, texts in sorted(by_source.items()):
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for j, text in enumerate(texts):
                handle.write(json.dumps({"id": f"{name}-{j}", "text": text}) + "\n")
        domain = "ecommerce" if name in ECOMMERCE_SOURCES else "general"
        sources.append({"name": name, "path": str(folder / f"{name}.jsonl"), "domain": domain})
    return sources


def markdown(result: dict) -> str:
    test = result["classifier"]["test"]
    lines = [
        "# E-commerce classifier and pipeline on the shared-data pool",
        "",
        (
            f"Pool: {result['pool_size']:,} examples (max {result['max_per_source']:,} per source); "
            f"split train/valid/test = {result['classifier']['sizes']}."
        ),
        "",
        (
            f"Held-out e-commerce **precision {test['precision']:.4f}**, **recall {test['recall']:.4f}**, "
            f"F1 {test['f1']:.4f} at threshold {result['classifier']['threshold']:.5f} "
            f"(targets: precision and recall >= 0.95)."
        ),
        "",
        "| source | label | held-out n | classified e-commerce | pipeline kept fraction |",
        "|---|---|---|---|---|",
    ]
    for name, entry in sorted(result["classifier"]["test_by_source"].items()):
        kept = result["pipeline"]["sources"].get(name, {}).get("kept_fraction", float("nan"))
        lines.append(
            f"| {name} | {entry['label']} | {entry['n']} | {entry['fraction_predicted_ecommerce']:.3f} "
            f"| {kept:.3f} |"
        )
    lines += [
        "",
        "Pipeline stages on the held-out part:",
        "",
        "| stage | in | kept | removed | reasons |",
        "|---|---|---|---|---|",
    ]
    for stage in result["pipeline"]["stages"]:
        reasons = ", ".join(f"{k}: {v}" for k, v in stage["reasons"].items())
        lines.append(
            f"| {stage['name']} | {stage['docs_in']} | {stage['docs_kept']} | {stage['docs_removed']} "
            f"| {reasons} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", default="../shared/data")
    parser.add_argument("--out", default="runs/curation-eval")
    parser.add_argument("--max-per-source", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    shutil.rmtree(out / "pipeline", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    pool = load_shared_pool(args.shared_data, max_per_source=args.max_per_source, seed=args.seed)
    texts, labels = [e.text for e in pool], [e.is_ecommerce for e in pool]
    settings = TrainSettings(seed=args.seed)
    summary = train_and_evaluate(
        texts, labels, out / "ecom.bin", settings=settings, groups=[e.source for e in pool]
    )
    _, _, test = split_examples(len(pool), 0.1, 0.2, settings.seed)
    sources = write_held_out_sources(pool, test, out / "held_out")
    config = config_from_dict(
        {
            "output_dir": str(out / "pipeline"),
            "tasks": 2,
            "workers": 2,
            "sources": sources,
            "stages": {"classifier": {"model": str(out / "ecom.bin")}},
        }
    )
    report = run_pipeline(config)
    result = {
        "pool_size": len(pool),
        "max_per_source": args.max_per_source,
        "classifier": summary,
        "pipeline": {"sources": report["sources"], "stages": report["stages"], "totals": report["totals"]},
    }
    (out / "classifier_eval.json").write_text(json.dumps(result, indent=2))
    (out / "classifier_eval.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
