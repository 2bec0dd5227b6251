"""The pretraining data path at corpus scale: tokenize once, memory-map, resume in constant time.

Four figures, each next to a reference measured in the same run:

(a) tokenization throughput per core: `rexbert tokenize` (datatrove, one task per file) on the small corpus
    with 1 and 2 worker processes; reference: the in-memory path's tokenize-and-pack (`PackedRows`), one
    process. One process batches through the Rust tokenizer, whose threads use every core; in forked
    workers it runs one thread each, so the per-core figure is the 2-worker one.
(b) loader throughput from shards, collation and Guided-MLM masking included: a `MixtureStream` over two
    sharded sources, seq 1,024, batch 32, in one process (target >= 4M tokens/s, what a 17m model consumes
    on one H100); reference: the same stream over in-memory `PackedRows`.
(c) peak RSS of a pretraining start (`rexbert pretrain`, phase 1, 4 steps) on the small and the large corpus
    read from shards (target: large <= 1.5x small); reference: the small corpus read as text (in-memory
    packing), and the large one too with `--full`.
(d) time to resume a stream at batch 1,000,000 from its saved state (target < 1 s): restore + first batch.
(e) a streaming source (jsonl files, `datasets` streaming): time to its next row from a saved position near
    its end, next to the time a resume without positions would spend replaying the rows before.
(f) memory of a shuffled epoch's row order (`trainers.row_order.RowOrder`) at 10^6, 10^9 and 10^12 rows:
    the RSS a process gains positioning a source cursor mid-epoch and reading from it (target: constant);
    reference: the materialised int64 permutation it replaced, at 10^8 rows (8 bytes a row: 7.5 GiB at 10^9).
(g) the cost of the shards' block checksums: SHA-256 GB/s over a 1 GiB file in the page cache, next to
    reading it without hashing (a block is hashed once, the first time training reads it).

The corpora are the project's generated sample text (listings and reviews as `ecom`, general text as
`general`), written as jsonl files of ~25 MB and ~250 MB (`--quick`: 2.5 MB and 25 MB). The tokenizer is
ModernBERT's (built from the OLMo BPE in ../shared/data) when it is there, else a BPE trained on the sample.

    python -m bench.bench_data [--quick] [--full] [--out outputs/bench]   # writes bench_data.json / .md
    python -m bench.bench_data --only fg                                    # (f) and (g) alone, a minute
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

SHARED_TOKENIZER = (
    Path(__file__).resolve().parents[2] / "shared/data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json"
)
SEQ_LEN, BATCH = 1024, 32


def write_corpus(directory: Path, megabytes: float, files_per_source: int = 4) -> dict[str, list[str]]:
    """jsonl files of generated sample text, about `megabytes` in all, split over sources and files."""
    from rexbert_core.sample_corpus import sample_documents

    directory.mkdir(parents=True, exist_ok=True)
    sources = {"ecom": ("listing", "review"), "general": ("general",)}
    paths: dict[str, list[str]] = {name: [] for name in sources}
    per_file = megabytes * 1e6 / len(sources) / files_per_source
    seed = 0
    for name, kinds in sources.items():
        for index in range(files_per_source):
            path = directory / f"{name}-{index}.jsonl"
            written = 0
            with path.open("w", encoding="utf-8") as handle:
                while written < per_file:
                    seed += 1
                    counts = {kind: 2000 for kind in kinds}
                    for doc in sample_documents(seed=seed, docs_per_source=counts):
                        line = json.dumps({"text": doc["text"]}) + "\n"
                        handle.write(line)
                        written += len(line)
            paths[name].append(str(path))
    return paths


def make_tokenizer(directory: Path):
    from modeling_rexbert.tokenization import build_modernbert_tokenizer, train_bpe_tokenizer
    from rexbert_core.sample_corpus import sample_documents

    if SHARED_TOKENIZER.is_file():
        tokenizer = build_modernbert_tokenizer(str(SHARED_TOKENIZER))
    else:
        tokenizer = train_bpe_tokenizer([d["text"] for d in sample_documents(seed=0)], vocab_size=4096)
    tokenizer.save_pretrained(directory)
    return tokenizer


def tokenize(
    corpus: dict[str, list[str]], tokenizer_dir: Path, output: Path, workers: int
) -> tuple[float, int]:
    from curation.tokenize import TokenizeConfig, tokenize_corpus

    started = time.perf_counter()
    config = TokenizeConfig(str(output), str(tokenizer_dir), corpus, workers=workers)
    manifest = tokenize_corpus(config, restart=True)
    return time.perf_counter() - started, sum(s.tokens for s in manifest.sources.values())


def in_memory_packing(corpus: dict[str, list[str]], tokenizer) -> tuple[float, int]:
    from trainers.packing import PackedRows

    texts = [json.loads(line)["text"] for line in open(corpus["ecom"][0], encoding="utf-8")]
    started = time.perf_counter()
    rows = PackedRows.from_texts("ecom", texts, tokenizer, SEQ_LEN)
    return time.perf_counter() - started, rows.stats.tokens + rows.stats.tail_tokens


def stream_over(sources: dict, tokenizer, lexicon):
    from trainers.collator import GuidedMLMCollator
    from trainers.mixture import MixtureSchedule, MixtureStream

    collator = GuidedMLMCollator(tokenizer, lexicon=lexicon)
    schedule = MixtureSchedule.interpolated({"general": 0.7, "ecom": 0.3}, {"general": 0.2, "ecom": 0.8})
    return MixtureStream(
        sources,
        schedule,
        collator,
        batch_size=BATCH,
        max_steps=1_000_000,
        seed=0,
        mask_rate=0.3,
        guidance=0.5,
    )


def loader_tokens_per_s(stream, batches: int) -> float:
    iterator = iter(stream)
    next(iterator)  # cursors and permutations are set up on the first batch
    started = time.perf_counter()
    tokens = sum(int(next(iterator)["attention_mask"].sum()) for _ in range(batches))
    return tokens / (time.perf_counter() - started)


def resume_seconds(sources: dict, tokenizer, lexicon, batch_index: int) -> float:
    """Restore a stream at `batch_index` from a saved state (rows taken per source as the schedule's mean
    share would give them) and build its first batch."""
    from trainers.mixture import MixtureState

    stream = stream_over(sources, tokenizer, lexicon)
    rows = batch_index * BATCH
    state = MixtureState(batch_index, {"general": rows // 2, "ecom": rows - rows // 2}, seed=0)
    started = time.perf_counter()
    stream.restore(state)
    next(iter(stream))
    return time.perf_counter() - started


def streaming_resume(files: list[str], tokenizer) -> dict:
    """A streaming source of jsonl files read to its last row (what a resume without a saved position
    replays), then resumed from that row's saved `StreamPosition` (`IterableDataset.state_dict()` + offset)."""
    import datasets

    from trainers.packing import StreamingPackedSource, StreamPosition

    dataset = datasets.load_dataset("json", data_files=files, split="train", streaming=True)
    source = StreamingPackedSource("ecom", dataset, tokenizer, SEQ_LEN)
    started = time.perf_counter()
    rows, positions = 0, []
    for _, position in source.rows_from(StreamPosition(0)):
        rows += 1
        positions = positions[-1:] + [position]
    replay = time.perf_counter() - started
    started = time.perf_counter()
    next(source.rows_from(positions[0]))  # the row before the last one, from its saved position
    return {
        "rows": rows,
        "seconds_replaying_to_the_last_row": replay,
        "seconds_from_saved_position": time.perf_counter() - started,
    }


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


# Prints the RSS (resident now, not peak) a process gains by positioning a SourceCursor at the middle of a shuffled epoch of N rows
# and reading 1,000 rows (or, with "permutation", by materialising the old int64 permutation of N rows).
ORDER_RSS = """
import sys
import numpy as np
import psutil
from trainers.cursors import SourceCursor
from trainers.packing import RandomAccessRows
rows, kind = int(sys.argv[1]), sys.argv[2]

class Rows(RandomAccessRows):
    name, shuffle = "bench", True
    row = {"input_ids": np.zeros(8, dtype=np.int32), "position_ids": np.arange(8, dtype=np.int32)}
    finite_rows = rows
    def __getitem__(self, index):
        return self.row

def rss():  # the resident set now (a peak would hide what stays below the imports' high-water mark)
    return psutil.Process().memory_info().rss

before = rss()
if kind == "permutation":
    order = np.random.default_rng([0, 0, 1]).permutation(rows)
else:
    cursor = SourceCursor(Rows(), seed=0, rows_taken=rows // 2, on_exhausted="recycle")
    for _ in range(1000):
        cursor.next()
print(rss() - before)
"""


def order_rss(rows: int, kind: str = "row_order") -> int:
    """Bytes of RSS gained (see ORDER_RSS), in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", ORDER_RSS, str(rows), kind], capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip().splitlines()[-1])


def checksum_cost(directory: Path, gigabytes: float = 1.0) -> dict:
    """SHA-256 block digests (`safe_outputs.block_digests`) vs a plain read of the same cached file."""
    from rexbert_core.safe_outputs import block_digests

    path = directory / "blocks.bin"
    block = np.random.default_rng(0).integers(0, 2**16, size=8 << 20, dtype=np.uint16).tobytes()  # 16 MiB
    with path.open("wb") as handle:
        for _ in range(int(gigabytes * 2**30) // len(block)):
            handle.write(block)
    size = path.stat().st_size

    def read_all() -> None:
        with path.open("rb") as handle:
            while handle.read(16 << 20):
                pass

    read_all()  # into the page cache
    started = time.perf_counter()
    read_all()
    read_seconds = time.perf_counter() - started
    started = time.perf_counter()
    block_digests(path)
    hash_seconds = time.perf_counter() - started
    path.unlink()
    return {
        "bytes": size,
        "sha256_gb_per_s": size / hash_seconds / 1e9,
        "read_gb_per_s": size / read_seconds / 1e9,
    }


def pretraining_peak_rss(sources: dict[str, dict], tokenizer_dir: Path, output: Path) -> float:
    """Peak RSS (bytes) of `rexbert pretrain` phase 1 for 4 steps with these source settings."""
    overrides = [
        f"tokenizer.path={tokenizer_dir}", "tokenizer.train_vocab_size=null", "lexicon.max_docs=500",
        "validation.documents_per_source=16", "phases.general.steps=4", "phases.general.eval_steps=0",
        "phases.general.seq_len=1024", "phases.general.model.max_position_embeddings=1024",
    ]  # fmt: skip
    for name, settings in sources.items():
        overrides += [f"sources.{name}.sample_corpus=null"]
        overrides += [f"sources.{name}.{key}={value}" for key, value in settings.items()]
    command = [sys.executable, "-m", "rexbert", "pretrain", "--recipe", "tiny", "--phase", "general"]
    command += ["--output", str(output)] + [item for o in overrides for item in ("--set", o)]
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pretraining failed: {result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="corpora of 2.5 and 25 MB")
    parser.add_argument(
        "--full", action="store_true", help="also start pretraining on the large corpus as text"
    )
    parser.add_argument("--batches", type=int, default=200, help="batches timed for (b)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--only", default="abcdefg", help="the figures to measure, e.g. fg (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = (2.5, 25.0) if args.quick else (25.0, 250.0)
    results: dict = {"corpus_mb": sizes, "seq_len": SEQ_LEN, "batch": BATCH}
    if "f" in args.only:
        results["f_order_rss_bytes"] = {
            **{f"row_order_{rows:.0e}": order_rss(rows) for rows in (10**6, 10**9, 10**12)},
            "reference_permutation_1e+08": order_rss(10**8, "permutation"),
        }
        print("(f)", results["f_order_rss_bytes"], flush=True)
    if "g" in args.only:
        with tempfile.TemporaryDirectory() as scratch:
            results["g_checksums"] = checksum_cost(Path(scratch))
        print("(g)", results["g_checksums"], flush=True)
    if set(args.only) & set("abcde"):
        measure_corpus_figures(args, results, sizes)
    results["meta"] = {
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "tokenizer": "ModernBERT (OLMo BPE)" if SHARED_TOKENIZER.is_file() else "trained BPE",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_data.json").write_text(json.dumps(results, indent=2, default=float))
    table = markdown(results)
    (args.out / "bench_data.md").write_text(table + "\n")
    print("\n" + table)
    return 0


def measure_corpus_figures(args, results: dict, sizes: tuple[float, float]) -> None:
    """(a) to (e): on generated corpora of the two sizes, tokenized into shards."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        tokenizer = make_tokenizer(scratch / "tokenizer")
        corpora = {size: write_corpus(scratch / f"corpus-{size}", size) for size in sizes}
        small, large = sizes

        # (a) tokenization throughput
        seconds_1, tokens = tokenize(corpora[small], scratch / "tokenizer", scratch / "shards-a", workers=1)
        seconds_2, _ = tokenize(corpora[small], scratch / "tokenizer", scratch / "shards-a", workers=2)
        packing_seconds, packed_tokens = in_memory_packing(corpora[small], tokenizer)
        results["a_tokenize"] = {
            "tokens": tokens,
            "tokens_per_s_1_worker": tokens / seconds_1,
            "tokens_per_s_per_core_2_workers": tokens / seconds_2 / 2,
            "reference_in_memory_tokens_per_s": packed_tokens / packing_seconds,
        }
        print("(a)", results["a_tokenize"], flush=True)

        # (b) loader throughput, shards vs in-memory rows
        _, large_tokens = tokenize(corpora[large], scratch / "tokenizer", scratch / "shards", workers=2)
        from rexbert_core.token_shards import SourceTokens
        from trainers.packing import PackedRows
        from trainers.saliency import build_saliency_lexicon
        from trainers.token_rows import ShardedRows

        shards = {
            name: ShardedRows(name, SourceTokens(scratch / "shards", name), SEQ_LEN)
            for name in corpora[large]
        }
        decoded = {
            name: [
                tokenizer.decode(shards[name].source.document(i), skip_special_tokens=True)
                for i in range(300)
            ]
            for name in shards
        }
        lexicon = build_saliency_lexicon(decoded["ecom"], decoded["general"], tokenizer, min_count=3)
        in_memory = {
            name: PackedRows.from_token_ids(
                name, (s.source.document(i) for i in range(s.source.num_documents // 10)), SEQ_LEN
            )
            for name, s in shards.items()
        }
        results["b_loader"] = {
            "tokens_per_s_shards": loader_tokens_per_s(stream_over(shards, tokenizer, lexicon), args.batches),
            "reference_tokens_per_s_in_memory": loader_tokens_per_s(
                stream_over(in_memory, tokenizer, lexicon), args.batches
            ),
            "target_tokens_per_s": 4e6,
        }
        print("(b)", results["b_loader"], flush=True)

        # (d) resume at batch 1,000,000
        results["d_resume"] = {
            "seconds_at_batch_1000000": resume_seconds(shards, tokenizer, lexicon, 1_000_000),
            "seconds_at_batch_1000": resume_seconds(shards, tokenizer, lexicon, 1_000),
            "target_seconds": 1.0,
        }
        print("(d)", results["d_resume"], flush=True)
        results["e_streaming_resume"] = streaming_resume(corpora[small]["ecom"], tokenizer)
        print("(e)", results["e_streaming_resume"], flush=True)

        # (c) peak RSS of a pretraining start
        _, _ = tokenize(corpora[small], scratch / "tokenizer", scratch / "shards-small", workers=2)
        rss = {}
        for label, directory in (("small", "shards-small"), ("large", "shards")):
            settings = {name: {"shards": scratch / directory} for name in corpora[small]}
            rss[f"shards_{label}"] = pretraining_peak_rss(
                settings, scratch / "tokenizer", scratch / f"run-{label}"
            )
        text_runs = ("small", "large") if args.full else ("small",)
        for label in text_runs:
            size = small if label == "small" else large
            settings = {name: {"data_files": ",".join(paths)} for name, paths in corpora[size].items()}
            settings = {name: {"data_files": f"[{value['data_files']}]"} for name, value in settings.items()}
            rss[f"text_{label}"] = pretraining_peak_rss(
                settings, scratch / "tokenizer", scratch / f"text-{label}"
            )
        results["c_peak_rss_bytes"] = {
            **rss,
            "large_over_small_shards": rss["shards_large"] / rss["shards_small"],
        }
        print("(c)", results["c_peak_rss_bytes"], flush=True)
        results["tokens_large_corpus"] = large_tokens


def markdown(results: dict) -> str:
    mb = 1 / 2**20
    lines = ["| figure | measured | reference / target |", "|---|---:|---:|"]
    if "f_order_rss_bytes" in results:
        f = results["f_order_rss_bytes"]
        measured = ", ".join(
            f"{key.split('_')[-1]} rows {value * mb:,.1f} MiB"
            for key, value in f.items()
            if key.startswith("row_order")
        )
        lines.append(
            f"| (f) RSS gained by a shuffled epoch's row order | {measured} | permutation of 1e+08 rows: "
            f"{f['reference_permutation_1e+08'] * mb:,.0f} MiB; target constant |"
        )
    if "g_checksums" in results:
        g = results["g_checksums"]
        lines.append(
            f"| (g) shard block checksums (SHA-256), GB/s | {g['sha256_gb_per_s']:.2f} | reading the same cached "
            f"GiB: {g['read_gb_per_s']:.1f} GB/s |"
        )
    if "a_tokenize" not in results:
        return "\n".join(lines)
    a, b, c, d = results["a_tokenize"], results["b_loader"], results["c_peak_rss_bytes"], results["d_resume"]
    e = results["e_streaming_resume"]
    small, large = results["corpus_mb"]
    lines += [
        f"| (a) tokenize, tokens/s, 1 worker (its Rust tokenizer threads on every core) | {a['tokens_per_s_1_worker']:,.0f} | in-memory tokenize+pack, same threads: {a['reference_in_memory_tokens_per_s']:,.0f} |",
        f"| (a) tokenize, tokens/s per core, 2 workers (one thread each) | {a['tokens_per_s_per_core_2_workers']:,.0f} | |",
        f"| (b) loader from shards, tokens/s (seq {SEQ_LEN}, batch {BATCH}, Guided MLM) | {b['tokens_per_s_shards']:,.0f} | in-memory rows {b['reference_tokens_per_s_in_memory']:,.0f}; target 4,000,000 |",
        f"| (c) pretraining start, peak RSS, shards {small:g} MB | {c['shards_small'] * mb:,.0f} MiB | text {small:g} MB: {c['text_small'] * mb:,.0f} MiB |",
        f"| (c) pretraining start, peak RSS, shards {large:g} MB | {c['shards_large'] * mb:,.0f} MiB | {c['large_over_small_shards']:.2f}x the small one; target <= 1.5x |",
        f"| (d) resume at batch 1,000,000, s | {d['seconds_at_batch_1000000']:.3f} | at batch 1,000: {d['seconds_at_batch_1000']:.3f}; target < 1 |",
        f"| (e) streaming source, resume at row {e['rows'] - 1:,} from its saved position, s | {e['seconds_from_saved_position']:.3f} | replaying to it: {e['seconds_replaying_to_the_last_row']:.1f} |",
    ]
    if "text_large" in c:
        lines.append(
            f"| (c) peak RSS, text {large:g} MB (in-memory packing) | {c['text_large'] * mb:,.0f} MiB | |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
