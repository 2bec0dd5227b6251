"""`DenseIndex`: unit-length embeddings of a product corpus with their ids, searched exactly by inner product.

Search runs on faiss (`IndexFlatIP`) when faiss is installed, else on numpy (a matrix product and a partial
sort per block of queries): both exact, so they return the same products. Saved as a folder:
`embeddings.parquet` (`id`, `embedding`: a list of float32), `texts.parquet` (`id`, `text`: what was
embedded, for showing results and reranking), `index.json` (the model, dimension, count, how the texts were
made) and, with faiss, `index.faiss`; `rexbert embed` writes it and `rexbert search` reads it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rexbert_core.safe_outputs import atomic_write_json
from rexbert_core.typed_config import DataError

from .runs import Ranking

__all__ = ["DenseIndex", "EMBEDDINGS_FILENAME", "INDEX_FILENAME", "encode_texts", "faiss_or_none"]

EMBEDDINGS_FILENAME = "embeddings.parquet"
INDEX_FILENAME = "index.json"
FAISS_FILENAME = "index.faiss"
TEXTS_FILENAME = "texts.parquet"


def faiss_or_none():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def encode_texts(model, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
    """Unit-length float32 embeddings of `texts` with a SentenceTransformer (its length-sorted batches)."""
    embeddings = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=progress,
    )  # fmt: skip
    return np.ascontiguousarray(embeddings, dtype=np.float32)


class DenseIndex:
    """Embeddings (rows of unit length) of the products `ids`."""

    def __init__(
        self, ids: Sequence[str], embeddings: np.ndarray, model: str | None = None,
        texts: Sequence[str] | None = None, about: dict | None = None,
    ):  # fmt: skip
        if len(ids) != len(embeddings):
            raise ValueError(f"{len(ids)} ids for {len(embeddings)} embeddings")
        self.ids = [str(i) for i in ids]
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.model, self.texts, self.about = model, list(texts) if texts is not None else None, about or {}
        self._faiss = None

    @property
    def dimension(self) -> int:
        return int(self.embeddings.shape[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(row indices, scores), each `(len(queries), k)`, best first."""
        k = min(k, len(self.ids))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        faiss = faiss_or_none()
        if faiss is not None:
            if self._faiss is None:
                self._faiss = faiss.IndexFlatIP(self.dimension)
                self._faiss.add(self.embeddings)
            scores, rows = self._faiss.search(queries, k)
            return rows, scores
        rows, scores = [], []
        for start in range(0, len(queries), 256):  # blocks keep the score matrix small
            block = queries[start : start + 256] @ self.embeddings.T
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(block, top, axis=1), axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            rows.append(top)
            scores.append(np.take_along_axis(block, top, axis=1))
        return np.concatenate(rows), np.concatenate(scores)

    def search_texts(self, model, queries: dict[str, str], k: int = 100, batch_size: int = 32) -> Ranking:
        """Each query's top `k` products, the queries embedded with `model`."""
        rows, scores = self.search(encode_texts(model, list(queries.values()), batch_size), k)
        return Ranking(
            {
                query: [(self.ids[r], float(s)) for r, s in zip(row, score)]
                for query, row, score in zip(queries, rows, scores)
            }
        )

    # ---- on disk --------------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        flat = pa.array(self.embeddings.reshape(-1), type=pa.float32())
        table = pa.table(
            {"id": self.ids, "embedding": pa.FixedSizeListArray.from_arrays(flat, self.dimension)}
        )
        partial = directory / f"{EMBEDDINGS_FILENAME}.partial"
        pq.write_table(table, partial)
        partial.replace(directory / EMBEDDINGS_FILENAME)
        faiss = faiss_or_none()
        if faiss is not None:
            index = faiss.IndexFlatIP(self.dimension)
            index.add(self.embeddings)
            faiss.write_index(index, str(directory / f"{FAISS_FILENAME}.partial"))
            (directory / f"{FAISS_FILENAME}.partial").replace(directory / FAISS_FILENAME)
        if self.texts is not None:
            pq.write_table(
                pa.table({"id": self.ids, "text": self.texts}), directory / f"{TEXTS_FILENAME}.partial"
            )
            (directory / f"{TEXTS_FILENAME}.partial").replace(directory / TEXTS_FILENAME)
        meta = {
            "model": self.model, "dimension": self.dimension, "count": len(self.ids), "normalized": True,
            **self.about,
        }  # fmt: skip
        atomic_write_json(directory / INDEX_FILENAME, meta)  # last: it marks the index complete
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> DenseIndex:
        directory = Path(directory)
        meta_path = directory / INDEX_FILENAME
        if not meta_path.is_file():
            raise DataError(
                f"{directory}: not an index (no {INDEX_FILENAME}; build one with `rexbert embed`)"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        table = pq.read_table(directory / EMBEDDINGS_FILENAME)
        flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        embeddings = flat.reshape(len(table), -1).astype(np.float32, copy=False)
        if embeddings.shape != (meta["count"], meta["dimension"]):
            raise DataError(
                f"{directory}: {embeddings.shape} embeddings where {INDEX_FILENAME} says "
                f"{(meta['count'], meta['dimension'])}"
            )
        texts = None
        if (directory / TEXTS_FILENAME).is_file():
            texts = pq.read_table(directory / TEXTS_FILENAME).column("text").to_pylist()
        about = {k: v for k, v in meta.items() if k not in ("model", "dimension", "count", "normalized")}
        return cls(table.column("id").to_pylist(), embeddings, meta.get("model"), texts, about)
