"""`rexbert embed`: a catalogue's embeddings and search index from a bi-encoder (what `rexbert search` reads).

    rexbert embed --model runs/retrieval/model --input products.parquet --columns title,description \\
        --id-column id --output runs/catalogue-index

The rows' texts are the `--columns` joined (`retrieval.catalogue`), embedded with sentence-transformers'
`encode` (length-sorted batches, unit length), and written as `retrieval.dense.DenseIndex` folder: parquet
`id` + `embedding`, the texts, `index.json`, and a faiss index when faiss is installed. The output folder is
owned: another model, input or column list is refused there, `--restart` replaces what `embed` wrote.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "main"]

logger = logging.getLogger("rexbert.embed")


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
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--max-seq-length", type=int, default=None, help="tokens per text (default: the model's)"
    )
    parser.add_argument("--restart", action="store_true", help="replace what an earlier embed wrote there")


def main(args: argparse.Namespace) -> int:
    from eval_suites.models import check_model_path
    from eval_suites.tasks.retrieval import bi_encoder
    from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory

    from .catalogue import catalogue_texts
    from .dense import (
        EMBEDDINGS_FILENAME,
        FAISS_FILENAME,
        INDEX_FILENAME,
        TEXTS_FILENAME,
        DenseIndex,
        encode_texts,
    )

    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    inputs = [os.path.abspath(p) for p in args.input]
    ids, texts, empty = catalogue_texts(inputs, columns, args.id_column)
    check_model_path(args.model)
    model = bi_encoder(args.model, args.max_seq_length)
    record = {"model": str(args.model), "inputs": inputs, "columns": columns, "id_column": args.id_column,
              "max_seq_length": model.max_seq_length}  # fmt: skip
    with DirectoryLock(args.output):
        owned = OwnedDirectory.claim(args.output, "embed", record, restart=args.restart)
        owned.created(EMBEDDINGS_FILENAME, FAISS_FILENAME, INDEX_FILENAME, TEXTS_FILENAME)
        embeddings = encode_texts(model, texts, args.batch_size, progress=sys.stderr.isatty())
        about = {
            "columns": columns,
            "inputs": [Path(p).name for p in inputs],
            "max_seq_length": model.max_seq_length,
        }
        DenseIndex(ids, embeddings, str(args.model), texts, about).save(args.output)
    print(
        f"{len(ids)} products embedded ({embeddings.shape[1]} dimensions; {empty} with an empty text left out): {args.output}"
    )
    return 0
