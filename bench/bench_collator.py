"""Speed of the GuidedMLMCollator against a RexBERT-17m training step on CPU.

    .venv/bin/python bench/bench_collator.py [--seq-len 1024] [--batch-size 8] [--output runs/bench_collator]

Rows are packed from real text (Vespa product titles and general_text prose from ../shared/data,
or the embedded sample corpus when that folder is absent) with the ModernBERT-style tokenizer built
from the OLMo BPE file (vocabulary 50,368, as the 17m preset) or, without it, a locally trained BPE.
Reported, all measured in this process (best of repeated runs; compare the ratios):

- collator tokens/s for uniform MLM, guided MLM and guided whole-word MLM;
- the time of one training step of rexbert-17m (forward, backward, AdamW step; sparse prediction)
  on one such batch, and each collator's share of (collator + step);
- guided / uniform collator time.

Targets: every collator under 5% of the step, guided under 1.5x uniform. Writes results.json and
results.md into --output.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rexbert_core.tables import markdown_table  # noqa: E402
from trainers.collator import GuidedMLMCollator  # noqa: E402
from trainers.packing import PackedRows  # noqa: E402
from trainers.saliency import build_saliency_lexicon  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def load_texts() -> tuple[list[str], list[str], str]:
    """(domain texts, general texts, where they came from)."""
    titles = SHARED / "ecommerce_products_vespa" / "products.parquet"
    general = SHARED / "general_text" / "documents.parquet"
    if titles.is_file() and general.is_file():
        import pandas as pd

        return (
            pd.read_parquet(titles, columns=["title"])["title"].tolist(),
            pd.read_parquet(general, columns=["text"])["text"].tolist(),
            "shared data",
        )
    from rexbert_core.sample_corpus import sample_documents

    docs = sample_documents(seed=0)
    return (
        [d["text"] for d in docs if d["domain"] != "general"],
        [d["text"] for d in docs if d["domain"] == "general"],
        "embedded sample corpus",
    )


def load_tokenizer(domain: list[str], general: list[str]):
    from modeling_rexbert.tokenization import build_modernbert_tokenizer, train_bpe_tokenizer

    olmo = SHARED / "tokenizers" / "allenai_gpt-neox-olmo-dolma-v1_5.json"
    if olmo.is_file():
        return build_modernbert_tokenizer(olmo)
    return train_bpe_tokenizer(domain[:2000] + general[:200], vocab_size=8192)


def best_seconds(fn, repeats: int) -> float:
    """Fastest of `repeats` timed calls after a warm-up (as `timeit` advises: other load on the
    machine only ever adds time)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def training_step_seconds(tokenizer, batch, repeats: int) -> float:
    from modeling_rexbert import RexBertForMaskedLM, rexbert_config
    from modeling_rexbert.tokenization import tokenizer_config_kwargs

    torch.manual_seed(0)
    model = RexBertForMaskedLM(
        rexbert_config("rexbert-17m", **tokenizer_config_kwargs(tokenizer), sparse_prediction=True)
    ).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    inputs = {k: v for k, v in batch.items() if k != "source_ids"}

    def step():
        optimizer.zero_grad(set_to_none=True)
        model(**inputs).loss.backward()
        optimizer.step()

    return best_seconds(step, repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30, help="collator calls per variant")
    parser.add_argument("--step-repeats", type=int, default=3, help="training steps timed")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both measurements (1 is steadiest on a shared machine)",
    )
    parser.add_argument("--output", default="runs/bench_collator")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    domain, general, origin = load_texts()
    tokenizer = load_tokenizer(domain, general)
    lexicon = build_saliency_lexicon(domain[:5000], general[:500], tokenizer, min_count=5)
    half = [
        PackedRows.from_texts("ecom", domain[5000:15000], tokenizer, args.seq_len),
        PackedRows.from_texts("general", general[500:1500], tokenizer, args.seq_len),
    ]
    rows = [half[i % 2][i // 2 % len(half[i % 2])] for i in range(args.batch_size * 16)]
    batches = [rows[i : i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
    tokens_per_batch = args.batch_size * args.seq_len

    variants = {  # (collator, guidance), masking 30%
        "uniform": (GuidedMLMCollator(tokenizer), 0.0),
        "guided": (GuidedMLMCollator(tokenizer, lexicon=lexicon, temperature=2.0), 1.0),
        "guided_whole_word": (
            GuidedMLMCollator(tokenizer, lexicon=lexicon, temperature=2.0, whole_word=True),
            1.0,
        ),
    }
    collate_seconds = {}
    for name, (collator, guidance) in variants.items():
        cycle = itertools.cycle(batches)
        collate_seconds[name] = best_seconds(
            lambda c=collator, b=cycle, g=guidance: c(next(b), mask_rate=0.3, guidance=g), args.repeats
        )
    step = training_step_seconds(
        tokenizer, variants["uniform"][0](batches[0], mask_rate=0.3), args.step_repeats
    )

    results = {
        "setup": {
            "seq_len": args.seq_len,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "vocab_size": len(tokenizer),
            "text": origin,
            "lexicon_tokens": len(lexicon.scores),
            "model": "rexbert-17m, sparse prediction, fp32, AdamW",
        },
        "training_step_seconds": step,
        "collators": {
            name: {
                "seconds_per_batch": seconds,
                "tokens_per_second": tokens_per_batch / seconds,
                "share_of_step": seconds / (seconds + step),
                "vs_uniform": seconds / collate_seconds["uniform"],
            }
            for name, seconds in collate_seconds.items()
        },
    }
    results["targets_met"] = {
        "collator_under_5pct_of_step": all(r["share_of_step"] < 0.05 for r in results["collators"].values()),
        "guided_under_1.5x_uniform": results["collators"]["guided"]["vs_uniform"] < 1.5,
    }
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    lines = [
        f"# Collator speed ({args.batch_size} x {args.seq_len} tokens, {args.threads} threads, {origin})",
        "",
        f"rexbert-17m training step: {step * 1000:.1f} ms",
        "",
    ]
    rows = [
        [name, f"{r['seconds_per_batch'] * 1000:.2f}", f"{r['tokens_per_second']:,.0f}"]
        + [f"{r['share_of_step']:.4%}", f"{r['vs_uniform']:.2f}x"]
        for name, r in results["collators"].items()
    ]
    header = ["collator", "ms / batch", "tokens/s", "share of step", "vs uniform"]
    lines += [markdown_table(header, rows, align="lrrrr"), "", f"Targets: {results['targets_met']}"]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
