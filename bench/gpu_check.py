"""Every GPU check in one command (under 5 minutes on one H100/H200): parity, speed, a short pretraining.

    python -m bench.gpu_check --out runs/gpu_check           # on a CUDA machine
    python -m bench.gpu_check --device cpu --quick            # a smoke run of the same code on a CPU

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
3. Pretraining: the tiny recipe at rexbert-17m size on the generated sample corpus for about 90 seconds;
   the validation loss must fall.

Writes gpu_check.json and gpu_check.md. The GPU machine runs its own torch (2.11) and transformers; the
project's pinned pure-Python wheels travel with the working tree (see the closing notes of the issue).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import time
from pathlib import Path

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM, ModernBertModel

from modeling_rexbert import RexBertForMaskedLM, RexBertModel, rexbert_config
from modeling_rexbert.attention import VARLEN_HAS_WINDOW, flash_attn_varlen_func, varlen_attn

SMALL_SHAPE = dict(hidden_size=256, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4)


def reference_config(config) -> ModernBertConfig:
    fields = {
        k: v for k, v in config.to_dict().items() if k not in ("model_type", "auto_map", "architectures")
    }
    reference = ModernBertConfig(**fields)
    reference._attn_implementation = "sdpa"
    return reference


def backends(device: str) -> list[str]:
    found = ["sdpa", "eager"]
    if device == "cuda" and varlen_attn is not None:
        found.append("varlen_attn")
    if device == "cuda" and flash_attn_varlen_func is not None:
        found.append("flash_attention_2")
    return found


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
            if device == "cpu" and dtype == torch.bfloat16 and backend != "sdpa":
                continue
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


def speed(device: str, quick: bool, peak_tflops: float) -> list[dict]:
    results = []
    presets = ["rexbert-17m"] if quick else ["rexbert-17m", "rexbert-150m"]
    width, rows = (256, 4) if quick else (1024, 32)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    fastest = next((b for b in ("flash_attention_2", "varlen_attn") if b in backends(device)), "sdpa")
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
        ours.config._attn_implementation = fastest
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
            "backend": fastest,
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


def pretraining(out: Path, quick: bool) -> dict:
    from trainers.pretrain import pretrain
    from trainers.recipes import load_recipe

    steps = 20 if quick else 600
    overrides = [
        "preset=rexbert-17m", "model={hidden_size: 256, intermediate_size: 384, num_hidden_layers: 7, "
        "num_attention_heads: 4, local_attention: 128}",
        f"phases.general.steps={steps}", f"phases.general.eval_steps={max(steps // 6, 1)}",
        "phases.general.batch_size=32", "phases.general.seq_len=128", "phases.general.lr.warmup_steps=10",
    ]  # fmt: skip
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
        "steps": steps,
        "validation_losses": evals,
        "falls": len(evals) >= 2 and evals[-1] < evals[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU")
    parser.add_argument("--out", default="runs/gpu_check")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "varlen_attn": varlen_attn is not None,
        "varlen_window": VARLEN_HAS_WINDOW,
        "flash_attn": flash_attn_varlen_func is not None,
        "parity": parity(args.device, args.quick),
        "speed": speed(args.device, args.quick, args.peak_tflops),
        "pretraining": pretraining(out, args.quick),
    }
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"# GPU check on {report['device']} (torch {report['torch']})",
        "",
        "| backend | dtype | ragged | packed |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {p['backend']} | {p['dtype']} | {p['ragged']:.2e} | {p['packed']:.2e} |" for p in report["parity"]
    ]
    lines += [
        "",
        "| preset | backend | RexBERT tok/s | ModernBERT tok/s | speedup | RexBERT MFU | ModernBERT MFU |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s['preset']} | {s['backend']} | {s['rexbert_tokens_per_s']:,.0f} | {s['modernbert_tokens_per_s']:,.0f} | "
        f"{s['speedup']:.2f}x | {s['rexbert_mfu']:.1%} | {s['modernbert_mfu']:.1%} |"
        for s in report["speed"]
    ]
    pre = report["pretraining"]
    lines += [
        "",
        f"Pretraining: {pre['steps']} steps in {pre['seconds']:.0f} s, validation loss "
        f"{' -> '.join(f'{v:.3f}' for v in pre['validation_losses'])} ({'falls' if pre['falls'] else 'does not fall'}).",
    ]
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if not math.isfinite(sum(p["ragged"] for p in report["parity"])):
        raise SystemExit("parity produced non-finite differences")


if __name__ == "__main__":
    main()
