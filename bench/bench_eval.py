"""Time every eval suite with its default budget on a randomly initialised RexBERT preset (CPU).

    .venv/bin/python -m bench.bench_eval --data-root ../shared/data --preset rexbert-17m --out runs/bench-eval

Builds the preset with the ModernBERT-style tokenizer (OLMo BPE + specials, vocab 50,368), saves
it, then runs each suite through the runner with the suites' default budgets. Wall seconds depend
on the machine and its load, so each suite is also printed as a ratio to a reference measured in
the same process: one training step (forward + backward, batch 16 x 128 tokens) of the same model.
Writes bench_eval.json and bench_eval.md to --out.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402


def build_checkpoint(preset: str, tokenizer_json: Path, out_dir: Path) -> Path:
    """A random-init RexBertForMaskedLM of the preset plus its tokenizer, saved to out_dir."""
    from modeling_rexbert import RexBertForMaskedLM, rexbert_config
    from modeling_rexbert.tokenization import build_modernbert_tokenizer, tokenizer_config_kwargs

    tokenizer = build_modernbert_tokenizer(tokenizer_json)
    torch.manual_seed(0)
    model = RexBertForMaskedLM(rexbert_config(preset, **tokenizer_config_kwargs(tokenizer)))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def reference_step_seconds(checkpoint: Path, repeats: int = 3) -> float:
    """Median seconds of one MLM forward + backward at batch 16 x 128 on the same model."""
    from eval_suites.models import load_masked_lm

    model = load_masked_lm(checkpoint).train()
    ids = torch.randint(10, 50000, (16, 128))
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        times.append(time.perf_counter() - started)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data", type=Path)
    parser.add_argument("--preset", default="rexbert-17m")
    parser.add_argument("--suites", default="esci-tokens,esci-similarity,esci-classification,glue,ner")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench-eval", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from eval_suites import runner

    root = args.data_root
    esci = root / "esci_fixtures"
    data = {
        "esci": [
            str(esci / "vespa_esci_sample_examples.parquet"),
            str(esci / "vespa_esci_sample_products.parquet"),
            str(esci / "parthu_query_esci_lookup.csv"),
        ],
        "glue": [str(root / "glue")],
        "ner": [str(root / "ecommerce_ner_lenovo" / "lenovo_ner_test.jsonl.gz")],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = build_checkpoint(
        args.preset, root / "tokenizers" / "allenai_gpt-neox-olmo-dolma-v1_5.json", args.out / args.preset
    )
    reference = reference_step_seconds(checkpoint)
    rows = []
    for suite in args.suites.split(","):
        result = runner.evaluate_model(str(checkpoint), [suite], data)[suite]
        rows.append(
            {
                "suite": suite,
                "seconds": round(result.seconds, 1),
                "ratio": round(result.seconds / reference, 1),
                "n_examples": result.n_examples,
                "main_metric": result.main_metric,
                "score": result.metrics[result.main_metric],
                "budget": runner.default_budget(suite).__dict__,
            }
        )
        print(
            f"{suite:22s} {result.seconds:8.1f} s  = {result.seconds / reference:7.1f} reference steps",
            flush=True,
        )
    report = {
        "preset": args.preset,
        "threads": args.threads,
        "reference_step_seconds": reference,
        "suites": rows,
    }
    (args.out / "bench_eval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# Eval suites on random-init {args.preset}, CPU, {args.threads} threads",
        "",
        f"Reference: one MLM training step (16 x 128 tokens) = {reference:.2f} s.",
        "",
        "| suite | seconds | reference steps | examples scored |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['suite']} | {r['seconds']} | {r['ratio']} | {r['n_examples']} |" for r in rows]
    (args.out / "bench_eval.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
