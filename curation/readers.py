"""Readers that turn raw records into datatrove Documents and account for every bad one.

datatrove's own readers skip malformed lines with a log warning; a curation run must not lose input
silently, so these readers check each record and send the ones they cannot use to a rejects file
(``<rejects>/<source>-<rank>.jsonl``: source, file, row, reason, a prefix of the raw record) and count
them in the step stats as ``rejected`` and ``rejected_<reason>``. Reasons: ``invalid_utf8``,
``malformed_json``, ``not_an_object``, ``missing_field:<key>``, ``text_not_a_string``, ``empty_text``,
``too_short``, ``too_long``, ``id_not_a_string``, ``duplicate_id`` and ``unreadable_file`` (a file that
cannot be opened, or a compressed or parquet file that is corrupt or ends early: the records read before
the damage are kept, the rest of the file is one reject naming where it broke, and the run goes on).

Ids: a string id is kept; an integer id becomes its decimal string (counted as ``ids_from_integers``); any
other type is rejected. A source's id seen a second time by the same task (a task reads a shard of the
files) is rejected as ``duplicate_id``. A record without an id gets ``<source>/<file>/<row>``; so does every
record when the reader is built with `ids=False` (`rexbert tokenize`: ids play no part in token shards, and a
repeated one must not drop a document). Every accepted document gets ``source``, ``domain`` and
``token_count`` metadata. Input records = documents read + rejected.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.io import get_datafolder
from datatrove.pipeline.readers import HuggingFaceDatasetReader
from datatrove.pipeline.readers.base import BaseDiskReader

from curation.config import InputLimits, SourceConfig
from curation.text import TokenCounter
from rexbert_core.typed_config import DataError

__all__ = [
    "RAW_PREFIX_CHARS",
    "DatasetsRecordReader",
    "JsonlRecordReader",
    "ParquetRecordReader",
    "RecordChecks",
    "RejectSink",
    "build_reader",
    "iter_records",
]

RAW_PREFIX_CHARS = 300
# What reading a damaged file raises: gzip's EOFError and BadGzipFile (an OSError), zlib.error, and the
# ValueErrors of other decompressors (unknown or damaged frames).
UNREADABLE: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error, ValueError)


class RejectSink:
    """Writes reject records of one task to ``<folder>/<source>-<rank>.jsonl`` (opened with the task)."""

    def __init__(self, folder: str, source: str):
        self.folder = folder
        self.source = source
        self._handle = None

    def open(self, rank: int) -> None:
        """Through datatrove's `DataFolder`, so the folder may be local, s3://, hf:// or any fsspec URL."""
        folder = get_datafolder(self.folder)
        # closed by close(), after the task
        self._handle = folder.open(f"{self.source}-{rank:05d}.jsonl", "w", encoding="utf-8")

    def write(self, file: str, row: int | str, reason: str, raw: Any) -> None:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        elif not isinstance(raw, str):
            raw = json.dumps(raw, ensure_ascii=False, default=str)
        record = {
            "source": self.source,
            "file": file,
            "row": row,
            "reason": reason,
            "raw": raw[:RAW_PREFIX_CHARS],
        }
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __getstate__(self) -> dict:
        return {"folder": self.folder, "source": self.source, "_handle": None}


class RecordChecks:
    """Turns a record dict into a Document, or names why it cannot (shared by all readers below)."""

    def _setup_checks(
        self,
        source: SourceConfig,
        limits: InputLimits,
        rejects_folder: str,
        token_counter: TokenCounter,
        domain_from_dir: bool = False,
        ids: bool = True,
    ) -> None:
        self.source = source
        self.limits = limits
        self.token_counter = token_counter
        self.domain_from_dir = domain_from_dir
        self.ids = ids
        self.rejects = RejectSink(rejects_folder, source.name)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        """The reader's own run (next in the MRO), with this rank's reject file open around it."""
        self._seen_ids: set[str] = set()
        self.rejects.open(rank)
        try:
            yield from super().run(data, rank, world_size)
        finally:
            self.rejects.close()

    def _reject(self, file: str, row: int | str, reason: str, raw: Any) -> None:
        self.rejects.write(file, row, reason, raw)
        self.stat_update("rejected", f"rejected_{reason}")

    def _document(self, record: dict, file: str, row: int | str) -> Document | None:
        """The Document for `record`, or None after writing a reject line."""
        text = record.get(self.source.text_key)
        if self.source.text_key not in record:
            reason = f"missing_field:{self.source.text_key}"
        elif not isinstance(text, str):
            reason = "empty_text" if text is None else "text_not_a_string"
        elif not text.strip():
            reason = "empty_text"
        elif len(text) < self.limits.min_chars:
            reason = "too_short"
        elif len(text) > self.limits.max_chars:
            reason = "too_long"
        else:
            reason = None
        if reason:
            self._reject(file, row, reason, record)
            return None
        doc_id = self._document_id(record.get(self.source.id_key) if self.ids else None, file, row, record)
        if doc_id is None:
            return None
        domain = record.get(self.source.domain_key) if self.source.domain_key else None
        if not domain and self.domain_from_dir:
            domain = os.path.basename(os.path.dirname(file)) or None
        metadata = {
            "source": self.source.name,
            "domain": str(domain or self.source.domain),
            "token_count": self.token_counter(text),
        }
        self.stat_update("docs_read")
        self.stat_update("tokens_read", value=metadata["token_count"])
        return Document(text=text, id=doc_id, metadata=metadata)

    def _document_id(self, raw: Any, file: str, row: int | str, record: dict) -> str | None:
        """The id of a record as the module docstring declares it, or None after a reject."""
        if raw is None:
            doc_id = f"{self.source.name}/{file}/{row}"
        elif isinstance(raw, str):
            doc_id = raw
        elif isinstance(raw, int) and not isinstance(raw, bool):
            doc_id = str(raw)
            self.stat_update("ids_from_integers")
        else:
            self._reject(file, row, "id_not_a_string", record)
            return None
        if doc_id in self._seen_ids:
            self._reject(file, row, "duplicate_id", record)
            return None
        self._seen_ids.add(doc_id)
        return doc_id

    def _unreadable(self, file: str, row: int | str, error: BaseException) -> None:
        """The rest of `file` from `row` on cannot be read: one reject naming where and why."""
        self._reject(file, row, "unreadable_file", f"{type(error).__name__}: {error}")


class JsonlRecordReader(RecordChecks, BaseDiskReader):
    """JSON-lines files (optionally gzip/zstd compressed), one record per line; FineFineWeb-style too."""

    name = "curation:read-jsonl"

    def __init__(
        self,
        source: SourceConfig,
        limits: InputLimits,
        rejects_folder: str,
        token_counter: TokenCounter,
        domain_from_dir: bool = False,
        progress: bool = False,
        paths_file: str | None = None,
        ids: bool = True,
    ):
        self.name = f"curation:read:{source.name}"
        folder, glob = source.path, source.glob
        if os.path.isfile(folder):  # a single file: read its folder, matching only this file
            folder, glob = os.path.dirname(folder), os.path.basename(folder)
        super().__init__(folder, glob_pattern=glob, paths_file=paths_file, file_progress=progress)
        self._setup_checks(source, limits, rejects_folder, token_counter, domain_from_dir, ids)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        row = 0
        try:
            for row, document in self._read_lines(filepath):
                if document is not None:
                    yield document
        except UNREADABLE as error:  # a corrupt or truncated (compressed) file: counted, the run goes on
            self._unreadable(filepath, f"{row}+", error)

    def _read_lines(self, filepath: str):
        """(row, Document or None) for every line of the file."""
        import orjson

        with self.data_folder.open(filepath, "rb", compression="infer") as handle:
            for row, line in enumerate(handle):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line.decode("utf-8"))
                except UnicodeDecodeError:
                    self._reject(filepath, row, "invalid_utf8", line)
                    continue
                except orjson.JSONDecodeError:
                    self._reject(filepath, row, "malformed_json", line)
                    continue
                if not isinstance(record, dict):
                    self._reject(filepath, row, "not_an_object", line)
                    continue
                yield row, self._document(record, filepath, row)


class ParquetRecordReader(JsonlRecordReader):
    """Parquet files read in record batches; a file without the text column rejects all its rows."""

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            handle = self.data_folder.open(filepath, "rb")
            parquet = pq.ParquetFile(handle)
        except (OSError, pa.ArrowException) as error:  # corrupt or truncated: one reject, the run goes on
            self._reject(filepath, -1, "unreadable_file", repr(error))
            return
        row = 0
        with handle, parquet:
            try:
                for batch in parquet.iter_batches(batch_size=1000):
                    for record in batch.to_pylist():
                        document = self._document(record, filepath, row)
                        row += 1
                        if document is not None:
                            yield document
            except (OSError, pa.ArrowException) as error:  # a damaged row group: the rest of the file
                self._unreadable(filepath, f"{row}+", error)


class DatasetsRecordReader(RecordChecks, HuggingFaceDatasetReader):
    """Any `datasets.load_dataset` source (hub name, or a builder such as ``parquet`` with local files)."""

    def __init__(
        self,
        source: SourceConfig,
        limits: InputLimits,
        rejects_folder: str,
        token_counter: TokenCounter,
        progress: bool = False,
        streaming: bool = False,
        ids: bool = True,
    ):
        self.name = f"curation:read:{source.name}"
        if not source.dataset:
            raise ValueError(f"source {source.name!r}: format datasets needs `dataset` (a name or builder)")
        options = dict(source.dataset_options)
        super().__init__(source.dataset, dataset_options=options, streaming=streaming, doc_progress=progress)
        self._setup_checks(source, limits, rejects_folder, token_counter, ids=ids)

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str) -> Document | None:
        return self._document(data, source_file, id_in_file)


def build_reader(
    *,
    source: SourceConfig,
    limits: InputLimits,
    rejects_folder: str,
    token_counter: TokenCounter,
    progress: bool = False,
    paths_file: str | None = None,
    ids: bool = True,
    streaming: bool = False,
):
    """The reader step for one configured source. `paths_file` (disk formats): read exactly the files it
    lists, in its order, one task per file; `streaming` (`datasets`): stream instead of downloading first."""
    if source.format != "datasets" and "://" not in source.path and not os.path.exists(source.path):
        raise DataError(f"source {source.name!r}: input path {source.path!r} does not exist")
    if source.format == "datasets":
        return DatasetsRecordReader(source, limits, rejects_folder, token_counter, progress, streaming, ids)
    reader = ParquetRecordReader if source.format == "parquet" else JsonlRecordReader
    return reader(
        source,
        limits,
        rejects_folder,
        token_counter,
        domain_from_dir=source.format == "finefineweb",
        progress=progress,
        paths_file=paths_file,
        ids=ids,
    )


def iter_records(path: str) -> Iterator[dict]:
    """All records of a local jsonl(.gz) or parquet file (for small tools and tests)."""
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
        return
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
