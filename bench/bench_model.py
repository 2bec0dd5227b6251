"""Throughput of RexBERT against transformers' ModernBERT (sdpa) on CPU, same process, same weights.

Both models are `*ForMaskedLM` in float32 with identical weights and identical config (including
`sparse_prediction`, which is benchmarked off and on by default: off, the MLM head runs on every position;
on, only on the 30% labelled ones). ModernBERT uses `attn_implementation="sdpa"` (its default); RexBERT its
default too (`sdpa` on the unpadded stream). Threads are fixed (2 by default).

Cases: (a) full batches 8 x 512, (b) ragged batches of 32 sequences with lengths uniform in [32, 512]
(right-padded to the longest). Modes: forward with MLM loss (no grad), and forward + backward of that loss.
Tokens/s counts real (non-padding) tokens. Before timing, each case checks that both models give the same
loss and logits on real tokens (max abs diff reported).

    python -m bench.bench_model                      # 17m and 150m, both sparse settings
    python -m bench.bench_model --quick              # 17m only, one timed repetition
    python -m bench.bench_model --out outputs/bench   # where bench_model.json / .md go
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM

from modeling_rexbert import RexBertForMaskedLM, rexbert_config
from rexbert_core.tables import markdown_table

MASK_RATE = 0.3


def make_batch(case: str, vocab_size: int, seed: int) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask / labels (30% of real tokens labelled) for one benchmark case."""
    generator = torch.Generator().manual_seed(seed)
    if case == "full":
        lengths = [512] * 8
    else:
        lengths = torch.randint(32, 513, (32,), generator=generator).tolist()
    seq_len = max(lengths)
    ids = torch.randint(5, vocab_size, (len(lengths), seq_len), generator=generator)
    mask = (torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = ids.masked_fill(mask == 0, 0)
    chosen = (torch.rand(ids.shape, generator=generator) < MASK_RATE) & mask.bool()
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def build_pair(preset: str, sparse: bool) -> tuple[RexBertForMaskedLM, ModernBertForMaskedLM]:
    """RexBERT and ModernBERT masked-LM models with the same random weights and config."""
    torch.manual_seed(0)
    config = rexbert_config(preset, sparse_prediction=sparse)
    ours = RexBertForMaskedLM(config)
    fields = {
        k: v for k, v in config.to_dict().items() if k not in ("model_type", "auto_map", "architectures")
    }
    reference_config = ModernBertConfig(**fields)
    reference_config._attn_implementation = "sdpa"
    reference = ModernBertForMaskedLM(reference_config)
    reference.load_state_dict(ours.state_dict())
    return ours, reference


def run_once(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], backward: bool, micro_batches: int = 1
) -> float:
    """Seconds for one forward (+ backward) pass; the backward pass may accumulate over row chunks."""
    start = time.perf_counter()
    if backward:
        model.train()
        model.zero_grad(set_to_none=True)
        for rows in zip(*(t.tensor_split(micro_batches) for t in batch.values())):
            model(**dict(zip(batch, rows))).loss.backward()
    else:
        model.eval()
        with torch.no_grad():
            model(**batch)
    return time.perf_counter() - start


def check_equal(ours, reference, batch) -> dict[str, float]:
    """Max abs differences of loss and logits (real tokens, or the labelled ones under sparse prediction)."""
    ours.eval()
    reference.eval()
    with torch.no_grad():
        got, want = ours(**batch), reference(**batch)
    if got.logits.dim() == 3:
        keep = batch["attention_mask"].bool()
        logits_diff = (got.logits[keep] - want.logits[keep]).abs().max().item()
    else:
        logits_diff = (got.logits - want.logits).abs().max().item()
    return {"loss_diff": abs(got.loss.item() - want.loss.item()), "logits_diff": logits_diff}


def reference_training_bytes(config, batch: dict[str, torch.Tensor]) -> int:
    """Rough peak memory of ModernBERT's forward+backward on the padded grid: saved activations per layer,
    plus, without sparse prediction, four (batch * seq_len, vocab) float32 tensors (logits, log-probabilities
    and their two gradients). An underestimate (150m ragged, sparse: 19 GiB estimated, killed with 22 GiB
    free), used only to split passes that would not fit."""
    grid_tokens = batch["input_ids"].numel()
    per_token = config.num_hidden_layers * (10 * config.hidden_size + 6 * config.intermediate_size)
    if not config.sparse_prediction:
        per_token += 4 * config.vocab_size
    return 4 * grid_tokens * per_token


def backward_micro_batches(config, batch: dict[str, torch.Tensor]) -> int:
    """Row chunks for forward+backward so that ModernBERT's pass fits in 3/4 of the available memory
    (e.g. 150m ragged batches on a 24 GiB machine). Both models run the same chunks of the same padded grid,
    so the work compared is unchanged; the row records the count."""
    available = available_memory_bytes()
    if available is None:
        return 1
    needed = reference_training_bytes(config, batch)
    return min(batch["input_ids"].shape[0], max(1, math.ceil(needed / (0.75 * available))))


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None elsewhere."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def bench_case(
    ours, reference, batch, backward: bool, reps: int, warmup: int = 1, micro_batches: int = 1
) -> dict[str, float]:
    """Median seconds over `reps` after `warmup` untimed passes, alternating the two models so that load
    changes on a shared machine hit both alike."""
    times: dict[str, list[float]] = {"rexbert": [], "modernbert": []}
    for _ in range(warmup):
        for model in (ours, reference):
            run_once(model, batch, backward, micro_batches)
    for _ in range(reps):
        times["rexbert"].append(run_once(ours, batch, backward, micro_batches))
        times["modernbert"].append(run_once(reference, batch, backward, micro_batches))
    tokens = int(batch["attention_mask"].sum())
    result = {"real_tokens": tokens, "micro_batches": micro_batches}
    for name, values in times.items():
        result[f"{name}_tokens_per_s"] = tokens / statistics.median(values)
    result["speedup"] = result["rexbert_tokens_per_s"] / result["modernbert_tokens_per_s"]
    return result


def _mode_label(row: dict) -> str:
    chunks = row.get("micro_batches", 1)
    return row["mode"] if chunks == 1 else f"{row['mode']} ({chunks} row chunks)"


def results_table(rows: list[dict]) -> str:
    header = ["preset", "sparse_prediction", "case", "mode", "RexBERT tok/s", "ModernBERT tok/s", "speedup"]
    cells = [
        [r["preset"], r["sparse_prediction"], r["case"], _mode_label(r), f"{r['rexbert_tokens_per_s']:,.0f}"]
        + [f"{r['modernbert_tokens_per_s']:,.0f}", f"{r['speedup']:.2f}x", f"{r['logits_diff']:.1e}"]
        for r in rows
    ]
    return markdown_table([*header, "max logit diff"], cells, align="llllrrrr")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["rexbert-17m", "rexbert-150m"])
    parser.add_argument("--sparse", choices=["off", "on", "both"], default="both")
    parser.add_argument("--cases", nargs="+", default=["full", "ragged"], choices=["full", "ragged"])
    parser.add_argument(
        "--modes", nargs="+", default=["forward", "forward+backward"], choices=["forward", "forward+backward"]
    )
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per case (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed passes per case and model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="17m only, one repetition")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args(argv)
    if args.quick:
        args.presets, args.reps = ["rexbert-17m"], 1
    torch.set_num_threads(args.threads)
    sparse_settings = {"off": [False], "on": [True], "both": [False, True]}[args.sparse]

    rows = []
    for preset in args.presets:
        for sparse in sparse_settings:
            ours, reference = build_pair(preset, sparse)
            for case in args.cases:
                batch = make_batch(case, ours.config.vocab_size, seed=1)
                equal = check_equal(ours, reference, batch)
                for mode in args.modes:
                    backward = mode == "forward+backward"
                    micro_batches = backward_micro_batches(ours.config, batch) if backward else 1
                    result = bench_case(
                        ours, reference, batch, backward, args.reps, args.warmup, micro_batches
                    )
                    row = {
                        "preset": preset,
                        "sparse_prediction": sparse,
                        "case": case,
                        "mode": mode,
                        **equal,
                        **result,
                    }
                    rows.append(row)
                    print(
                        f"{preset} sparse={sparse} {case} {mode}: {row['rexbert_tokens_per_s']:,.0f} vs "
                        f"{row['modernbert_tokens_per_s']:,.0f} tok/s ({row['speedup']:.2f}x), "
                        f"logit diff {row['logits_diff']:.1e}, loss diff {row['loss_diff']:.1e}",
                        flush=True,
                    )
    table = results_table(rows)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.machine(),
        "reps": args.reps,
        "warmup": args.warmup,
        "load_average_1m": os.getloadavg()[0],
        "mask_rate": MASK_RATE,
        "reference": "transformers ModernBertForMaskedLM, attn_implementation=sdpa",
    }
    (args.out / "bench_model.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (args.out / "bench_model.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
