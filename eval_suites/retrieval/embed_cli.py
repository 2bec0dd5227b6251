"""`rexbert embed`: a catalogue's embeddings and search index from a bi-encoder (what `rexbert search` reads).

    rexbert embed --model runs/retrieval/model --input products.parquet --columns title,description \\
        [--id-column id] [--int8] [--workers 4] [--max-tokens 8192] --output runs/catalogue-index

The rows' texts are the `--columns` joined (`retrieval.catalogue`: HTML removed, empty values left out, the
rest joined by one space in the order given), embedded by `retrieval.encoder.CatalogueEncoder` (RexBERT's
unpadded path, token-budget batches of similar length, unit length; `--int8` quantizes the linear layers and
prints the agreement with float32 on the first `AGREEMENT_SAMPLE` texts) and written as a
`retrieval.dense.DenseIndex` folder: parquet `id` + `embedding`, the texts, `index.json`, and a faiss index
when faiss is installed.

Work goes in chunks of `--chunk-size` texts, each saved under `chunks/` when done: an interrupted embed
continues from the chunks it finished. `--workers N` runs N processes (each with its share of the threads),
one chunk at a time each. The output folder is owned: another model, input, column list, text content or
setting is refused there, `--restart` replaces what `embed` wrote.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "main"]

logger = logging.getLogger("rexbert.embed")
CHUNKS_DIRNAME = "chunks"
AGREEMENT_SAMPLE = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.splitlines()[0]
    parser.add_argument(
        "--model", required=True, help="a bi-encoder (`rexbert finetune retrieval`'s model) or any encoder"
    )
    parser.add_argument("--input", required=True, nargs="+", help="product files (parquet, csv, json, jsonl)")
    parser.add_argument(
        "--columns", required=True, help="the text columns, comma-separated, e.g. title,description"
    )
    parser.add_argument("--id-column", default="id", help="the column of product ids (default: id)")
    parser.add_argument("--output", required=True, help="the index folder")
    parser.add_argument(
        "--max-tokens", type=int, default=8192, help="tokens per batch (texts of similar length go together)"
    )
    parser.add_argument(
        "--max-seq-length", type=int, default=None, help="tokens per text (default: the model's)"
    )
    parser.add_argument("--int8", action="store_true", help="dynamic int8 linear layers (prints agreement)")
    parser.add_argument("--workers", type=int, default=1, help="processes, each with its share of threads")
    parser.add_argument("--chunk-size", type=int, default=4096, help="texts per resumable chunk")
    parser.add_argument("--restart", action="store_true", help="replace what an earlier embed wrote there")


# ---- one process's work: load the model once, encode chunks ------------------------------------------------

_WORKER: dict = {}


def _load(model_path: str, max_seq_length: int | None, max_tokens: int, int8: bool, threads: int | None):
    import torch

    from eval_suites.tasks.retrieval import bi_encoder

    from .encoder import CatalogueEncoder

    if threads:
        torch.set_num_threads(threads)
    model = bi_encoder(model_path, max_seq_length)
    _WORKER["encoder"] = CatalogueEncoder(model, max_tokens=max_tokens, int8=int8)
    return _WORKER["encoder"]


def _encode_chunk(texts: list[str], path: str) -> int:
    from rexbert_core.safe_outputs import atomic_write_bytes

    buffer = io.BytesIO()
    np.save(buffer, _WORKER["encoder"].encode(texts), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())  # a chunk on disk is a finished chunk
    return len(texts)


def _chunk_path(output: Path, index: int) -> Path:
    return output / CHUNKS_DIRNAME / f"{index:06d}.npy"


def _encode_chunks(args, texts: list[str], output: Path, progress) -> None:
    """Every missing chunk of `texts` into `output/chunks/`, in this process or in `args.workers`."""
    size = args.chunk_size
    todo = [i for i in range((len(texts) + size - 1) // size) if not _chunk_path(output, i).is_file()]
    progress.update(len(texts) - sum(len(texts[i * size : (i + 1) * size]) for i in todo))
    (output / CHUNKS_DIRNAME).mkdir(parents=True, exist_ok=True)
    settings = (str(args.model), args.max_seq_length, args.max_tokens, args.int8)
    if args.workers <= 1:
        for index in todo:
            progress.update(
                _encode_chunk(texts[index * size : (index + 1) * size], str(_chunk_path(output, index)))
            )
        return
    import torch

    threads = max(1, torch.get_num_threads() // args.workers)
    with ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn"), initializer=_load, initargs=(*settings, threads)
    ) as pool:
        futures = [
            pool.submit(_encode_chunk, texts[i * size : (i + 1) * size], str(_chunk_path(output, i)))
            for i in todo
        ]
        for future in as_completed(futures):
            progress.update(future.result())


def _read_chunks(output: Path, count: int, size: int) -> np.ndarray:
    parts = [np.load(_chunk_path(output, i), allow_pickle=False) for i in range((count + size - 1) // size)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def _agreement(encoder, texts: list[str], int8_embeddings: np.ndarray, settings) -> str:
    """Cosine of the int8 embeddings with float32 ones on the first texts."""
    sample = texts[:AGREEMENT_SAMPLE]
    full = _load(*settings[:3], False, None).encode(sample)
    cosine = (full * int8_embeddings[: len(sample)]).sum(axis=1)
    return f"int8 against float32 on {len(sample)} texts: cosine mean {cosine.mean():.5f}, min {cosine.min():.5f}"


def main(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from eval_suites.models import check_model_path
    from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory
    from rexbert_core.typed_config import ConfigError, DataError

    from .catalogue import catalogue_texts
    from .dense import EMBEDDINGS_FILENAME, FAISS_FILENAME, INDEX_FILENAME, TEXTS_FILENAME, DenseIndex

    for name in ("max_tokens", "workers", "chunk_size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    inputs = [os.path.abspath(p) for p in args.input]
    ids, texts, empty = catalogue_texts(inputs, columns, args.id_column)
    if not texts:
        raise DataError(f"{', '.join(args.input)}: no row has text in {columns} ({empty} empty rows)")
    check_model_path(args.model)
    settings = (str(args.model), args.max_seq_length, args.max_tokens, args.int8, None)
    encoder = _load(*settings)
    record = {
        "model": str(args.model), "inputs": inputs, "columns": columns, "id_column": args.id_column,
        "max_seq_length": encoder.model.max_seq_length, "int8": args.int8, "chunk_size": args.chunk_size,
        "texts_sha256": hashlib.sha256("\n".join(f"{i}\t{t}" for i, t in zip(ids, texts)).encode()).hexdigest(),
    }  # fmt: skip
    output = Path(args.output)
    with DirectoryLock(output):
        owned = OwnedDirectory.claim(output, "embed", record, restart=args.restart)
        owned.created(CHUNKS_DIRNAME, EMBEDDINGS_FILENAME, FAISS_FILENAME, INDEX_FILENAME, TEXTS_FILENAME)
        started = time.perf_counter()
        with tqdm(total=len(texts), unit="text", disable=not sys.stderr.isatty(), desc="embed") as progress:
            _encode_chunks(args, texts, output, progress)
        seconds = time.perf_counter() - started
        embeddings = _read_chunks(output, len(texts), args.chunk_size)
        about = {"columns": columns, "inputs": [Path(p).name for p in inputs], "int8": args.int8,
                 "max_seq_length": encoder.model.max_seq_length}  # fmt: skip
        DenseIndex(ids, embeddings, str(args.model), texts, about).save(output)
    if args.int8:
        print(_agreement(encoder, texts, embeddings, settings))
    print(
        f"{len(ids)} products embedded in {seconds:.1f} s ({embeddings.shape[1]} dimensions; {empty} with an "
        f"empty text left out): {output}"
    )
    return 0
