"""Every GPU check in one command, under 8 minutes on one H100/H200: parity, speed, a short pretraining.

    python -m bench.gpu_check --prepare              # here: the wheels the GPU image lacks, into .whl/
    python -m bench.gpu_check --rehearse             # here: the whole script in the image's package versions
    python3 -m pip install ... .whl/*.whl; python3 -m bench.gpu_check --out $OUT/gpu_check   # on the GPU
    python -m bench.gpu_check --device cpu --emulate --quick      # CI: the same code on emulated kernels

1. Parity: every attention backend this machine has (sdpa and eager; `varlen_attn`, PyTorch's own varlen
   kernels; `flash_attention_2` with flash-attn) against transformers' ModernBERT (sdpa) on the same random
   weights, in float32 (sdpa, eager) and bfloat16 (all), on a ragged padded batch and on a packed batch
   (several documents per row, position ids restarting; ModernBERT gets the same documents as padded rows,
   since it cannot keep packed documents apart). Max abs difference of the last hidden state on real tokens.
2. Speed: a training step (forward, backward, AdamW step) of rexbert-17m and rexbert-150m in bfloat16 on
   rows of 1,024 tokens packed from documents of random length; RexBERT on the packed rows (its fastest
   backend here) against ModernBERT (sdpa) on the same documents padded to 1,024 per row, same process.
   Tokens/s counts real tokens; MFU = 6 * parameters * tokens/s plus attention FLOPs, over the GPU's dense
   bf16 peak (`--peak-tflops`, 989 for H100/H200 SXM).
3. Pretraining: the tiny recipe at rexbert-17m size on the generated sample corpus, bf16 on the fastest
   kernel, 600 steps (20 with --quick); the validation loss must fall.

The machine's own torch (2.11 there) and transformers (5.17) are used; the pure-Python wheels the image
lacks travel in `.whl/` (`bench/device_wheels.py` finds and fetches them). Each step runs on its own: a
failure is recorded with its error and the next step still runs, and gpu_check.json / gpu_check.md are
rewritten after every step, so whatever was measured survives a failure, a kill or the time limit
(`--budget`, seconds; a step that would start after it is skipped and said so). The exit status is 1 when a
step failed. `--emulate` puts the CPU emulations of both kernels in place
(`modeling_rexbert.emulated_kernels`), so the GPU backends' code paths run here and in the test suite; their
speed figures then mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import torch
import transformers
from transformers import ModernBertConfig, ModernBertForMaskedLM, ModernBertModel

from modeling_rexbert import RexBertForMaskedLM, RexBertModel, attention, rexbert_config
from rexbert_core.tables import markdown_table

KERNEL_BACKENDS = ("flash_attention_2", "varlen_attn")

SMALL_SHAPE = dict(hidden_size=256, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4)


def reference_config(config) -> ModernBertConfig:
    fields = {
        k: v for k, v in config.to_dict().items() if k not in ("model_type", "auto_map", "architectures")
    }
    reference = ModernBertConfig(**fields)
    reference._attn_implementation = "sdpa"
    return reference


def backends(device: str) -> list[str]:
    """sdpa and eager, and each GPU kernel this run can call (on CUDA, or emulated: read at call time)."""
    found = ["sdpa", "eager"]
    for name, kernel in (
        ("varlen_attn", attention.varlen_attn),
        ("flash_attention_2", attention.flash_attn_varlen_func),
    ):
        if kernel is not None and (device == "cuda" or getattr(kernel, "runs_on_cpu", False)):
            found.append(name)
    return found


def fastest(device: str) -> str:
    return next((b for b in KERNEL_BACKENDS if b in backends(device)), "sdpa")


def random_documents(count: int, low: int, high: int, vocab: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high + 1, (count,), generator=generator).tolist()
    return [torch.randint(5, vocab, (n,), generator=generator) for n in lengths]


def padded(documents: list[torch.Tensor], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    width = width or max(len(d) for d in documents)
    ids = torch.zeros(len(documents), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, document in enumerate(documents):
        ids[row, : len(document)], mask[row, : len(document)] = document, 1
    return ids, mask


def packed(documents: list[torch.Tensor], width: int) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
    """Rows of `width` tokens filled with whole documents (first fit), position ids restarting per document."""
    rows: list[list[torch.Tensor]] = []
    for index, document in enumerate(documents):
        for row in rows:
            if sum(len(documents[i]) for i in row) + len(document) <= width:
                row.append(index)
                break
        else:
            rows.append([index])
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    positions = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        start = 0
        for index in row:
            n = len(documents[index])
            ids[r, start : start + n] = documents[index]
            positions[r, start : start + n] = torch.arange(n)
            mask[r, start : start + n] = 1
            start += n
    return ids, positions, mask, rows


# ---- 1. parity ---------------------------------------------------------------------------------------


def parity(device: str, quick: bool) -> list[dict]:
    results = []
    torch.manual_seed(0)
    config = rexbert_config("rexbert-17m", **SMALL_SHAPE, max_position_embeddings=1024, local_attention=128)
    ours_fp32 = RexBertModel(config).eval()
    reference_fp32 = ModernBertModel(reference_config(config)).eval()
    reference_fp32.load_state_dict(ours_fp32.state_dict())
    documents = random_documents(12 if quick else 24, 16, 300, config.vocab_size, seed=1)
    ragged_ids, ragged_mask = padded(documents)
    pack_ids, pack_positions, pack_mask, rows = packed(documents, 1024)
    for backend in backends(device):
        for dtype in ([torch.float32] if backend in ("sdpa", "eager") else []) + [torch.bfloat16]:
            ours = RexBertModel(config).eval()
            ours.load_state_dict(ours_fp32.state_dict())
            ours.config._attn_implementation = backend
            ours, reference = ours.to(device, dtype), copy.deepcopy(reference_fp32).to(device, dtype)
            with torch.no_grad():
                want = reference(
                    ragged_ids.to(device), attention_mask=ragged_mask.to(device)
                ).last_hidden_state
                got = ours(ragged_ids.to(device), attention_mask=ragged_mask.to(device)).last_hidden_state
                keep = ragged_mask.bool().to(device)
                ragged_diff = (got[keep].float() - want[keep].float()).abs().max().item()
                got_packed = ours(
                    pack_ids.to(device),
                    attention_mask=pack_mask.to(device),
                    position_ids=pack_positions.to(device),
                ).last_hidden_state
                packed_diff = 0.0
                for r, row in enumerate(rows):  # each packed document against its own padded row
                    start = 0
                    for index in row:
                        n = len(documents[index])
                        packed_diff = max(
                            packed_diff,
                            (got_packed[r, start : start + n].float() - want[index, :n].float())
                            .abs()
                            .max()
                            .item(),
                        )
                        start += n
            results.append(
                {
                    "backend": backend,
                    "dtype": str(dtype).removeprefix("torch."),
                    "ragged": ragged_diff,
                    "packed": packed_diff,
                }
            )
            print(
                f"parity {backend:18s} {results[-1]['dtype']:9s} ragged {ragged_diff:.2e} packed {packed_diff:.2e}",
                flush=True,
            )
    return results


# ---- 2. speed ----------------------------------------------------------------------------------------


def flops_per_token(config, context: int) -> float:
    """Training FLOPs per token: 6 x parameters (dense) + attention (12 x layers x hidden x attended keys)."""
    hidden, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    dense = layers * (4 * hidden * hidden + 3 * hidden * inter) + hidden * hidden + hidden * config.vocab_size
    window = config.local_attention
    attended = sum(context if t == "full_attention" else min(window, context) for t in config.layer_types)
    return 6 * dense + 12 * hidden * attended


def time_steps(model, batch: dict, steps: int, device: str) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    for step in range(steps + 2):  # two warmup steps
        if step == 2:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def speed(device: str, quick: bool, peak_tflops: float, presets: str | None = None) -> list[dict]:
    results = []
    default = ["rexbert-17m"] if quick else ["rexbert-17m", "rexbert-150m"]
    presets = presets.split(",") if presets else default
    width, rows = (256, 4) if quick else (1024, 32)
    backend = fastest(device)
    dtype = torch.bfloat16 if device == "cuda" or backend in KERNEL_BACKENDS else torch.float32
    for preset in presets:
        torch.manual_seed(0)
        config = rexbert_config(preset, sparse_prediction=True, max_position_embeddings=max(width, 1024))
        documents = random_documents(rows * 4, width // 8, width // 2, config.vocab_size, seed=2)
        pack_ids, positions, mask, _ = packed(documents, width)
        pad_ids, pad_mask = padded(documents, width)
        labels_of = lambda ids, m: torch.where(  # noqa: E731
            (torch.rand(ids.shape, generator=torch.Generator().manual_seed(3)) < 0.3) & m.bool(), ids, -100
        )
        real = int(pad_mask.sum())
        ours = RexBertForMaskedLM(config).to(device, dtype)
        ours.config._attn_implementation = backend
        reference = ModernBertForMaskedLM(reference_config(config)).to(device, dtype)
        reference.load_state_dict(ours.state_dict())
        ours_batch = {
            "input_ids": pack_ids,
            "attention_mask": mask,
            "position_ids": positions,
            "labels": labels_of(pack_ids, mask),
        }
        reference_batch = {
            "input_ids": pad_ids,
            "attention_mask": pad_mask,
            "labels": labels_of(pad_ids, pad_mask),
        }
        steps = 2 if quick else 10
        seconds = {
            "rexbert": time_steps(ours, {k: v.to(device) for k, v in ours_batch.items()}, steps, device),
            "modernbert": time_steps(
                reference, {k: v.to(device) for k, v in reference_batch.items()}, steps, device
            ),
        }
        per_token = flops_per_token(config, width)
        row = {
            "preset": preset,
            "backend": backend,
            "dtype": str(dtype).removeprefix("torch."),
            "real_tokens": real,
        }
        for name, value in seconds.items():
            row[f"{name}_tokens_per_s"] = real / value
            row[f"{name}_mfu"] = real / value * per_token / (peak_tflops * 1e12)
        row["speedup"] = seconds["modernbert"] / seconds["rexbert"]
        results.append(row)
        print(
            f"speed {preset}: {row['rexbert_tokens_per_s']:,.0f} vs {row['modernbert_tokens_per_s']:,.0f} tok/s "
            f"({row['speedup']:.2f}x), MFU {row['rexbert_mfu']:.1%}",
            flush=True,
        )
        del ours, reference
    return results


# ---- 3. pretraining ----------------------------------------------------------------------------------


def pretraining(device: str, out: Path, quick: bool) -> dict:
    """`rexbert pretrain`'s first phase, in bfloat16 (autocast) on the fastest backend a recipe can name:
    `varlen_attn` (torch's kernel) where there is one; `flash_attention_2` needs the flash-attn package at
    model construction, so it is used only when that package is installed."""
    from trainers.pretrain import pretrain
    from trainers.recipes import load_recipe

    steps = 20 if quick else 600
    overrides = [
        "preset=rexbert-17m", "model={hidden_size: 256, intermediate_size: 384, num_hidden_layers: 7, "
        "num_attention_heads: 4, local_attention: 128}",
        f"phases.general.steps={steps}", f"phases.general.eval_steps={max(steps // 6, 1)}",
        f"phases.general.batch_size={16 if quick else 32}", "phases.general.seq_len=128",
        "phases.general.lr.warmup_steps=10",
    ]  # fmt: skip
    backend = next((b for b in ("varlen_attn", "flash_attention_2") if b in backends(device)), "sdpa")
    if backend == "flash_attention_2" and attention.flash_attn_varlen_func is not None and device != "cuda":
        backend = "sdpa"  # emulated flash-attn: transformers refuses it at construction without the package
    bf16 = device == "cuda" or backend != "sdpa"
    overrides += [f"model.attn_implementation={backend}"] + (["training_args={bf16: true}"] if bf16 else [])
    recipe = load_recipe("tiny", overrides)
    started = time.perf_counter()
    pretrain(recipe, out / "pretrain", phases=["general"], restart=True)
    entries = [
        json.loads(line)
        for line in (out / "pretrain" / "phase1-general" / "train_log.jsonl").read_text().splitlines()
    ]
    evals = [e["eval/loss"] for e in entries if "eval/loss" in e]
    return {
        "seconds": time.perf_counter() - started,
        "backend": backend,
        "bf16": bf16,
        "steps": steps,
        "validation_losses": evals,
        "falls": len(evals) >= 2 and evals[-1] < evals[0],
    }


def environment(device: str, emulated: bool) -> dict:
    kernel = attention.varlen_attn
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "emulated_kernels": emulated,
        "varlen_attn": str(inspect.signature(kernel)) if kernel is not None else None,
        "varlen_window": attention.takes_window(kernel),
        "flash_attn": attention.flash_attn_varlen_func is not None,
    }


def markdown(report: dict) -> str:
    lines = [f"# GPU check on {report['environment']['device']} (torch {report['environment']['torch']})", ""]
    if report.get("parity"):
        rows = [
            [p["backend"], p["dtype"], f"{p['ragged']:.2e}", f"{p['packed']:.2e}"] for p in report["parity"]
        ]
        lines += [markdown_table(["backend", "dtype", "ragged", "packed"], rows, align="llrr"), ""]
    if report.get("speed"):
        header = [
            "preset",
            "backend",
            "RexBERT tok/s",
            "ModernBERT tok/s",
            "speedup",
            "RexBERT MFU",
            "ModernBERT MFU",
        ]
        rows = [
            [
                s["preset"],
                s["backend"],
                f"{s['rexbert_tokens_per_s']:,.0f}",
                f"{s['modernbert_tokens_per_s']:,.0f}",
            ]
            + [f"{s['speedup']:.2f}x", f"{s['rexbert_mfu']:.1%}", f"{s['modernbert_mfu']:.1%}"]
            for s in report["speed"]
        ]
        lines += [markdown_table(header, rows, align="llrrrrr"), ""]
    if report.get("pretraining"):
        pre = report["pretraining"]
        losses = " -> ".join(f"{v:.3f}" for v in pre["validation_losses"])
        lines += [
            f"Pretraining ({pre['backend']}, bf16 {pre['bf16']}): {pre['steps']} steps in "
            f"{pre['seconds']:.0f} s, validation loss {losses} "
            f"({'falls' if pre['falls'] else 'does not fall'}).",
            "",
        ]
    for step, record in report["steps"].items():
        if record["status"] != "ok":
            lines.append(f"- {step}: {record['status']}: {record.get('error', '')}")
    return "\n".join(lines).rstrip() + "\n"


def write(report: dict, out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (out / "gpu_check.md").write_text(markdown(report))


def run_steps(args: argparse.Namespace, out: Path) -> dict:
    """Every step on its own, the report rewritten after each (see the module docstring)."""
    started = time.monotonic()
    report = {"environment": environment(args.device, args.emulate), "steps": {}}
    steps = {
        "parity": lambda: parity(args.device, args.quick),
        "speed": lambda: speed(args.device, args.quick, args.peak_tflops, args.presets),
        "pretraining": lambda: pretraining(args.device, out, args.quick),
    }
    for name in args.steps.split(","):
        step = steps[name]
        if report["steps"] and time.monotonic() - started > args.budget:  # the first step always runs
            report["steps"][name] = {"status": "skipped", "error": f"over the {args.budget:.0f} s budget"}
            write(report, out)
            continue
        begun = time.monotonic()
        try:
            report[name] = step()
            report["steps"][name] = {"status": "ok"}
        except Exception as error:  # recorded, and the next step runs
            lines = traceback.format_exception_only(type(error), error)
            report["steps"][name] = {"status": "failed", "error": " ".join(" ".join(lines).split())[:2000]}
            traceback.print_exc()
        report["steps"][name]["seconds"] = round(time.monotonic() - begun, 1)
        write(report, out)
        print(
            f"{name}: {report['steps'][name]['status']} in {report['steps'][name]['seconds']} s", flush=True
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--emulate", action="store_true", help="CPU emulations of the GPU kernels")
    parser.add_argument("--presets", default=None, help="speed presets, comma-separated (default 17m, 150m)")
    parser.add_argument("--steps", default="parity,speed,pretraining", help="the steps to run, in order")
    parser.add_argument(
        "--budget", type=float, default=420.0, help="seconds; later steps are skipped after it"
    )
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU")
    parser.add_argument("--out", default="runs/gpu_check")
    parser.add_argument(
        "--prepare", action="store_true", help="fetch the wheels the GPU image lacks into .whl/"
    )
    parser.add_argument(
        "--rehearse", action="store_true", help="run this script in the image's versions here"
    )
    args = parser.parse_args(argv)
    unknown = set(args.steps.split(",")) - {"parity", "speed", "pretraining"}
    if unknown:
        parser.error(f"--steps: unknown {sorted(unknown)}; steps: parity, speed, pretraining")
    if args.prepare or args.rehearse:
        from bench import device_wheels

        if args.prepare:
            device_wheels.prepare()
        return device_wheels.rehearse() if args.rehearse else 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    emulation = contextlib.nullcontext()
    if args.emulate:
        from modeling_rexbert import emulated_kernels

        emulation = emulated_kernels.installed()
    with emulation:
        report = run_steps(args, out)
    print(markdown(report))
    return 1 if any(r["status"] == "failed" for r in report["steps"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
