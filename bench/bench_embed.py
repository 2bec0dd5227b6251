"""Catalogue embedding on a CPU, as users run it: whole processes, real marketplace text, length-sorted batches.

For each shape (17m and 150m by default, random weights: no pretrained ones can be had here) a published
ModernBERT-typed bi-encoder (mean pooling, 512 tokens, the OLMo-based tokenizer) is built, and the shared
catalogue's first `--products` products (title + description) are embedded by, in alternated whole processes,
`--repeats` times each (the best time kept):

- `rexbert embed` (float32, its linear layers through oneDNN, attention on the packed AVX-512 kernel) and
  `rexbert embed --int8`;
- sentence-transformers 6.2 `encode` (batch 32) with transformers' ModernBERT (sdpa), the reference;
- ONNX Runtime running `torch.onnx` (dynamo) export of transformers' ModernBERT on the same length-sorted
  batches of 32, mean-pooled the same way (export time not counted).

Embeddings are compared with the reference first (cosine, every product). Tokens/s counts the real tokens of
the texts as embedded (truncated at 512). The model's FLOP/s (2 x linear weights + attention per token) is
put next to a plain float32 GEMM of the model's own linear shapes on the same threads, measured in every
round of this run (the best kept) through torch's default BLAS and through oneDNN (the faster is the machine's limit; on the AMD EPYC measured
oneDNN's is about twice MKL's): how far the encoder is from what the machine's matrix multiply does. With
`--retrieval-model` (a fine-tuned bi-encoder) and `--queries`, int8's retrieval metrics on a generated ESCI
set are compared with float32's.

    python -m bench.bench_embed [--presets rexbert-17m,rexbert-150m] [--products 4096] [--threads 2] \
        [--repeats 2] [--retrieval-model DIR] [--out outputs/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rexbert_core.tables import markdown_table

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CATALOGUE = SHARED / "ecommerce_products_vespa" / "products.parquet"
TOKENIZER = SHARED / "tokenizers" / "allenai_gpt-neox-olmo-dolma-v1_5.json"
MAX_SEQ_LENGTH = 512

SENTENCE_TRANSFORMERS = """
import json, sys, time, numpy as np, torch
from sentence_transformers import SentenceTransformer
model_dir, texts_file, out = sys.argv[1:4]
texts = json.load(open(texts_file))
model = SentenceTransformer(model_dir, device="cpu")
model.encode(texts[:64], batch_size=32)  # warm-up
started = time.perf_counter()
embeddings = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
seconds = time.perf_counter() - started
np.save(out, embeddings, allow_pickle=False)
print(json.dumps({"seconds": seconds}))
"""

ONNX_RUNTIME = """
import json, sys, time, tempfile, numpy as np, torch, onnxruntime
from transformers import AutoModel, AutoTokenizer
model_dir, texts_file, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
texts = json.load(open(texts_file))
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()
sample = tokenizer(texts[:4], padding=True, truncation=True, max_length=512, return_tensors="pt")
path = tempfile.mkdtemp() + "/model.onnx"
dims = {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}
torch.onnx.export(model, (), path, kwargs=dict(sample), dynamic_shapes={"input_ids": dims, "attention_mask": dims},
                  dynamo=True, verbose=False)
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = threads
session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # sentence-transformers' length sort
embeddings = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
started = time.perf_counter()
for start in range(0, len(order), 32):
    rows = order[start:start + 32]
    batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=512, return_tensors="np")
    hidden = session.run(None, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})[0]
    mask = batch["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    embeddings[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
seconds = time.perf_counter() - started
np.save(out, embeddings, allow_pickle=False)
print(json.dumps({"seconds": seconds}))
"""


def build_model(preset: str, root: Path) -> Path:
    """A random `preset` encoder published as a ModernBERT bi-encoder (mean pooling, 512 tokens)."""
    from hub_cards import make_sentence_transformer
    from modeling_rexbert import RexBertModel, rexbert_config
    from modeling_rexbert.convert import rexbert_to_modernbert
    from modeling_rexbert.tokenization import build_modernbert_tokenizer, tokenizer_config_kwargs

    tokenizer = build_modernbert_tokenizer(TOKENIZER, model_max_length=MAX_SEQ_LENGTH)
    torch.manual_seed(0)
    config = rexbert_config(
        preset, max_position_embeddings=MAX_SEQ_LENGTH, **tokenizer_config_kwargs(tokenizer)
    )
    RexBertModel(config).save_pretrained(root / "rexbert")
    tokenizer.save_pretrained(root / "rexbert")
    make_sentence_transformer(root / "rexbert", pooling="mean", max_seq_length=MAX_SEQ_LENGTH)
    return rexbert_to_modernbert(root / "rexbert", root / "published")


def catalogue(products: int, folder: Path) -> tuple[Path, list[str]]:
    """The catalogue file `rexbert embed` reads, and the texts as it joins them (for the other methods)."""
    import pandas as pd

    from eval_suites.retrieval.catalogue import catalogue_texts

    frame = pd.read_parquet(CATALOGUE, columns=["id", "title", "description"]).head(products)
    path = folder / "catalogue.parquet"
    frame.to_parquet(path, index=False)
    _, texts, _ = catalogue_texts([str(path)], ["title", "description"], "id")
    return path, texts


def run_embed(model: Path, data: Path, out: Path, int8: bool) -> tuple[float, np.ndarray]:
    command = [sys.executable, "-m", "rexbert.cli", "-q", "embed", "--model", str(model), "--input", str(data),
               "--columns", "title,description", "--output", str(out), "--restart"]  # fmt: skip
    result = subprocess.run(
        [*command, *(["--int8"] if int8 else [])], capture_output=True, text=True, check=True
    )
    seconds = float(result.stdout.split(" embedded in ")[1].split(" s")[0])
    from eval_suites.retrieval import DenseIndex

    return seconds, DenseIndex.load(out).embeddings


def run_script(script: str, *args: str) -> tuple[float, np.ndarray]:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"], np.load(args[2], allow_pickle=False)


def flops_per_token(config, mean_length: float) -> float:
    """2 x the linear weights, plus attention (QK^T and AV) over the mean text length."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = layers * (h * 3 * h + h * h + h * 2 * i + i * h)
    return 2 * linear + layers * 4 * h * mean_length


def gemm_rate(config, tokens: int = 4096, repeats: int = 20) -> dict[str, float]:
    """FLOP/s of float32 matrix multiplies of the model's linear shapes at `tokens` rows, through torch's
    default BLAS (`F.linear`) and through oneDNN with weights reordered once (`OneDnnLinear`): the faster is
    the machine's limit for these shapes."""
    from modeling_rexbert.cpu_linear import ONEDNN_LINEAR_AVAILABLE, OneDnnLinear

    h, i = config.hidden_size, config.intermediate_size
    shapes = [(h, 3 * h), (h, h), (h, 2 * i), (i, h)]
    inputs = {k: torch.randn(tokens, k) for k, _ in shapes}
    layers = [torch.nn.Linear(k, n, bias=False) for k, n in shapes]
    paths = {"torch": layers}
    if ONEDNN_LINEAR_AVAILABLE:
        paths["onednn"] = [OneDnnLinear.wrapping(layer) for layer in layers]
    rates = {}
    with torch.no_grad():
        for name, modules in paths.items():
            best = float("inf")
            for _ in range(repeats + 1):  # the first round reorders the oneDNN weights
                started = time.perf_counter()
                for (k, _), module in zip(shapes, modules):
                    module(inputs[k])
                best = min(best, time.perf_counter() - started)
            rates[name] = sum(2 * tokens * k * n for k, n in shapes) / best
    return rates


def int8_retrieval(model: Path, queries: int) -> dict:
    """nDCG@10 / MRR@10 / Recall@100 of a bi-encoder on a generated ESCI set, float32 against int8."""
    from sentence_transformers import SentenceTransformer

    from bench.bench_finetune import write_esci
    from eval_suites.retrieval import DenseIndex, Ranking, retrieval_metrics
    from eval_suites.retrieval.encoder import CatalogueEncoder
    from eval_suites.tasks.config import task_config
    from eval_suites.tasks.data import esci_splits

    with tempfile.TemporaryDirectory() as scratch:
        write_esci(Path(scratch), queries)
        _, _, test = esci_splits([scratch], task_config("retrieval").data)
    texts = test.text_of()
    ids = list(texts)
    scores = {}
    for name, int8 in (("float32", False), ("int8", True)):
        encoder = CatalogueEncoder(SentenceTransformer(str(model), device="cpu"), int8=int8)
        index = DenseIndex(ids, encoder.encode([texts[i] for i in ids]))
        rows, values = index.search(encoder.encode(list(test.queries.values())), 100)
        ranking = Ranking(
            {
                q: [(ids[r], float(s)) for r, s in zip(row, score)]
                for q, row, score in zip(test.queries, rows, values)
            }
        )
        scores[name] = retrieval_metrics(ranking, test.judgments)
    return scores


def bench_preset(preset: str, args, scratch: Path) -> dict:
    from transformers import AutoConfig, AutoTokenizer

    model = build_model(preset, scratch / preset)
    data, texts = catalogue(args.products, scratch)
    texts_file = scratch / "texts.json"
    texts_file.write_text(json.dumps(texts))
    tokenizer = AutoTokenizer.from_pretrained(model)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"]]
    tokens = sum(lengths)
    runs = {
        "rexbert embed": lambda: run_embed(model, data, scratch / "index", False),
        "rexbert embed --int8": lambda: run_embed(model, data, scratch / "index8", True),
        "sentence-transformers + ModernBERT": lambda: run_script(SENTENCE_TRANSFORMERS, str(model), str(texts_file), str(scratch / "st.npy")),
        "ONNX Runtime (ModernBERT export)": lambda: run_script(ONNX_RUNTIME, str(model), str(texts_file), str(scratch / "ort.npy"), str(args.threads)),
    }  # fmt: skip
    config = AutoConfig.from_pretrained(model)
    seconds, embeddings, gemm_rates = {name: float("inf") for name in runs}, {}, {}
    for _ in range(args.repeats):  # alternated: each method once per round, the best round kept
        for name, run in runs.items():
            took, embeddings[name] = run()
            seconds[name] = min(seconds[name], took)
            print(f"{preset} {name}: {took:.1f} s", flush=True)
        # the GEMM too, once per round: a single measurement caught one of this machine's slow spells
        for path, rate in gemm_rate(config).items():
            gemm_rates[path] = max(gemm_rates.get(path, 0.0), rate)
    reference = embeddings["sentence-transformers + ModernBERT"]
    per_token = flops_per_token(config, tokens / len(texts))
    gemm = max(gemm_rates.values())
    rows = {}
    for name in runs:
        rate = tokens / seconds[name]
        rows[name] = {
            "seconds": seconds[name], "tokens_per_s": rate, "gflops": rate * per_token / 1e9,
            "of_gemm": rate * per_token / gemm,
            "cosine_min": float((embeddings[name] * reference).sum(axis=1).min()),
            "vs_sentence_transformers": rate / (tokens / seconds["sentence-transformers + ModernBERT"]),
            "vs_onnx_runtime": rate / (tokens / seconds["ONNX Runtime (ModernBERT export)"]),
        }  # fmt: skip
    return {"products": len(texts), "tokens": tokens, "mean_tokens": tokens / len(texts),
            "gemm_gflops": gemm / 1e9, "gemm_gflops_by_path": {k: v / 1e9 for k, v in gemm_rates.items()},
            "flops_per_token": per_token, "methods": rows}  # fmt: skip


def markdown(results: dict) -> str:
    lines = []
    for preset, result in results["presets"].items():
        rows = [
            [name, f"{r['tokens_per_s']:,.0f}", f"{r['vs_sentence_transformers']:.2f}x", f"{r['vs_onnx_runtime']:.2f}x",
             f"{r['gflops']:.0f} ({r['of_gemm']:.0%})", f"{r['cosine_min']:.6f}"]
            for name, r in result["methods"].items()
        ]  # fmt: skip
        lines += [
            (
                f"**{preset}**: {result['products']:,} products, {result['tokens']:,} tokens "
                f"({result['mean_tokens']:.0f} per product), {results['threads']} threads; float32 GEMM of "
                f"the model's shapes: {result['gemm_gflops']:.0f} GFLOP/s ("
                + ", ".join(f"{k} {v:.0f}" for k, v in result["gemm_gflops_by_path"].items())
                + ")"
            ),
            "",
            markdown_table(
                ["method", "tokens/s", "vs ST", "vs ORT", "GFLOP/s (of GEMM)", "min cosine vs ST"], rows
            ),
            "",
        ]
    if "int8_retrieval" in results:
        r = results["int8_retrieval"]
        lines.append(
            "int8 retrieval (generated ESCI set): "
            + "; ".join(f"{m} {r['float32'][m]:.4f} -> {r['int8'][m]:.4f}" for m in r["float32"])
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="rexbert-17m,rexbert-150m")
    parser.add_argument("--products", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--retrieval-model", type=Path, help="a fine-tuned bi-encoder for int8's retrieval metrics"
    )
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args(argv)
    if not CATALOGUE.is_file() or not TOKENIZER.is_file():
        raise SystemExit(f"needs {CATALOGUE} and {TOKENIZER} (../shared/data)")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # every process on the same threads
    torch.set_num_threads(args.threads)
    results = {"threads": args.threads, "presets": {}, "machine": platform.platform()}
    with tempfile.TemporaryDirectory() as scratch:
        for preset in args.presets.split(","):
            results["presets"][preset] = bench_preset(preset, args, Path(scratch))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_embed.json").write_text(json.dumps(results, indent=2))  # kept if what follows fails
    if args.retrieval_model:
        results["int8_retrieval"] = int8_retrieval(args.retrieval_model, args.queries)
        (args.out / "bench_embed.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.out / "bench_embed.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
