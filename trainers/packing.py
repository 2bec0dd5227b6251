"""Sequence packing: tokenised documents concatenated into fixed-length rows.

Documents are tokenised with the tokenizer's own special tokens (`[CLS] text [SEP]`) and written one
after another into rows of `max_seq_len` tokens. Every row carries `position_ids` that restart at 0
where a document starts, the Hugging Face packing convention (`DataCollatorWithFlattening`), which
the RexBERT model reads to keep attention inside each document.

Declared handling of awkward input (nothing is dropped silently; `PackingStats` counts it all):

- an empty (or whitespace-only, or missing) document is skipped and counted in `empty_documents`;
- a document that does not fit in the room left in a row continues at the start of the next row,
  where its position ids restart at 0 (it becomes a new segment). A document longer than a whole
  row is therefore cut into row-sized pieces; such documents are counted in `long_documents`, and
  every document cut at a row boundary in `split_documents`;
- only the last, partly filled row of a source is special: it is dropped and its length is counted
  in `tail_tokens` (`keep_tail=True` yields it as a short row instead; the collator pads it).

Three source types implement the same small interface (`PackedSource`): `PackedRows`, packed once
into memory from a map-style dataset, and `token_rows.ShardedRows`, cut from memory-mapped token shards
(both `RandomAccessRows`: read by index, reshuffled per epoch by a `row_order.RowOrder` in constant
memory), and `StreamingPackedSource`, which packs a streaming `datasets.IterableDataset` lazily.
"""

from __future__ import annotations

import copy
import logging
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
from transformers.utils import logging as hf_logging

from .row_order import RowOrder

__all__ = [
    "PackedRows",
    "PackedSource",
    "PackingStats",
    "RandomAccessRows",
    "SequencePacker",
    "StreamPosition",
    "StreamingPackedSource",
    "encode_batch",
    "pack_texts",
]

logger = logging.getLogger(__name__)

Row = dict[str, np.ndarray]
"""One packed row: `input_ids` and `position_ids`, int32 arrays of the same length."""


@dataclass
class PackingStats:
    """What packing did with its input, so no document or token disappears unaccounted."""

    documents: int = 0
    empty_documents: int = 0
    long_documents: int = 0
    split_documents: int = 0
    tokens: int = 0
    rows: int = 0
    tail_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class SequencePacker:
    """Packs token-id sequences into rows of `max_seq_len`; see the module docstring for the rules."""

    def __init__(self, max_seq_len: int, keep_tail: bool = False):
        if max_seq_len < 2:
            raise ValueError(f"max_seq_len must be at least 2, got {max_seq_len}")
        self.max_seq_len = max_seq_len
        self.keep_tail = keep_tail
        self.stats = PackingStats()
        self._ids = np.empty(max_seq_len, dtype=np.int32)
        self._pos = np.empty(max_seq_len, dtype=np.int32)
        self._fill = 0

    @property
    def fill(self) -> int:
        """Tokens in the row being filled."""
        return self._fill

    def add(self, token_ids: Iterable[int]) -> list[Row]:
        """Append one tokenised document; return the rows it completed (often none)."""
        ids = np.asarray(token_ids, dtype=np.int32)
        self.stats.documents += 1
        if ids.size == 0:
            self.stats.empty_documents += 1
            return []
        self.stats.long_documents += int(ids.size > self.max_seq_len)
        self.stats.split_documents += int(ids.size > self.max_seq_len - self._fill)
        rows = []
        start = 0
        while start < ids.size:
            take = min(self.max_seq_len - self._fill, ids.size - start)
            self._ids[self._fill : self._fill + take] = ids[start : start + take]
            self._pos[self._fill : self._fill + take] = np.arange(take, dtype=np.int32)
            self._fill += take
            start += take
            if self._fill == self.max_seq_len:
                rows.append(self._emit())
        return rows

    def finish(self) -> list[Row]:
        """End of input: the partial last row is dropped (counted in `tail_tokens`) or kept."""
        if self._fill == 0:
            return []
        if self.keep_tail:
            return [self._emit()]
        self.stats.tail_tokens += self._fill
        self._fill = 0
        return []

    def _emit(self) -> Row:
        row = {"input_ids": self._ids[: self._fill].copy(), "position_ids": self._pos[: self._fill].copy()}
        self.stats.tokens += self._fill
        self.stats.rows += 1
        self._fill = 0
        return row


def encode_batch(tokenizer, texts: list[str], add_special_tokens: bool) -> list[list[int]]:
    """Token ids of `texts`, through the Rust tokenizer directly when there is one (several times
    faster than the Python `__call__` for plain id lists), without truncation."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and backend.truncation is None and backend.padding is None:
        return [enc.ids for enc in backend.encode_batch(texts, add_special_tokens=add_special_tokens)]
    return tokenizer(texts, add_special_tokens=add_special_tokens, verbose=False)["input_ids"]


def _texts_to_token_ids(texts: list, tokenizer) -> list[list[int]]:
    """Tokenise a batch; missing or blank texts become empty documents (counted by the packer)."""
    cleaned = [text if isinstance(text, str) and text.strip() else "" for text in texts]
    nonempty = [i for i, text in enumerate(cleaned) if text]
    encoded = encode_batch(tokenizer, [cleaned[i] for i in nonempty], add_special_tokens=True)
    token_ids: list[list[int]] = [[] for _ in cleaned]
    for i, ids in zip(nonempty, encoded):
        token_ids[i] = ids
    return token_ids


def pack_texts(
    texts: Iterable,
    tokenizer,
    max_seq_len: int,
    *,
    keep_tail: bool = False,
    batch_size: int = 1000,
    progress: str | None = None,
) -> tuple[Iterator[Row], SequencePacker]:
    """Tokenise and pack `texts` lazily. Returns the row iterator and its packer (whose `stats` are
    complete once the iterator is exhausted). `progress`: show a progress bar (documents) with this label
    (transformers' progress-bar switch and `TQDM_DISABLE` apply)."""
    packer = SequencePacker(max_seq_len, keep_tail=keep_tail)

    def rows() -> Iterator[Row]:
        total = len(texts) if hasattr(texts, "__len__") else None
        bar = hf_logging.tqdm(total=total, desc=progress, unit="doc", disable=progress is None or None)
        batch: list = []
        for text in texts:
            batch.append(text)
            if len(batch) == batch_size:
                for ids in _texts_to_token_ids(batch, tokenizer):
                    yield from packer.add(ids)
                bar.update(len(batch))
                batch = []
        for ids in _texts_to_token_ids(batch, tokenizer):
            yield from packer.add(ids)
        bar.update(len(batch))
        bar.close()
        yield from packer.finish()

    return rows(), packer


class PackedSource:
    """A named source of packed rows. `finite_rows` is the row count when known up front."""

    name: str
    max_seq_len: int

    @property
    def finite_rows(self) -> int | None:
        raise NotImplementedError

    def iter_epoch(self, epoch: int, seed: int) -> Iterator[Row]:
        """Rows of one pass over the source; the order may depend on (seed, epoch)."""
        raise NotImplementedError


class RandomAccessRows(PackedSource):
    """A source whose rows are read by index. Every epoch visits each row once, in an order shuffled from
    (seed, epoch, name) when `shuffle`; a reader can start anywhere in an epoch, or skip rows, without
    reading the rows before (`epoch_order` + `__getitem__`)."""

    shuffle: bool

    def __len__(self) -> int:
        return self.finite_rows

    def __getitem__(self, index: int) -> Row:
        raise NotImplementedError

    def epoch_order(self, epoch: int, seed: int) -> RowOrder:
        """Row indices in the order epoch `epoch` visits them (computed per position, in constant memory)."""
        return RowOrder(len(self), (seed, epoch, _stable_hash(self.name)), shuffle=self.shuffle)

    def iter_epoch(self, epoch: int, seed: int) -> Iterator[Row]:
        for index in self.epoch_order(epoch, seed):
            yield self[int(index)]


class PackedRows(RandomAccessRows):
    """All rows of a map-style source, packed once into two flat int32 arrays (random access)."""

    def __init__(
        self, name: str, rows: list[Row], stats: PackingStats, max_seq_len: int, shuffle: bool = True
    ):
        if not rows:
            raise ValueError(
                f"source {name!r} produced no packed row of {max_seq_len} tokens "
                f"({stats.documents} documents, {stats.empty_documents} empty, "
                f"{stats.tail_tokens} tail tokens); "
                "give it more text or a shorter max_seq_len"
            )
        self.name, self.stats, self.max_seq_len, self.shuffle = name, stats, max_seq_len, shuffle
        self._offsets = np.cumsum([0] + [len(row["input_ids"]) for row in rows])
        self._ids = np.concatenate([row["input_ids"] for row in rows])
        self._pos = np.concatenate([row["position_ids"] for row in rows])

    @classmethod
    def from_texts(
        cls,
        name: str,
        texts: Iterable,
        tokenizer,
        max_seq_len: int,
        *,
        keep_tail: bool = False,
        shuffle: bool = True,
    ) -> PackedRows:
        rows, packer = pack_texts(
            texts, tokenizer, max_seq_len, keep_tail=keep_tail, progress=f"packing {name}"
        )
        rows = list(rows)
        logger.info("packed source %r: %s", name, packer.stats.as_dict())
        return cls(name, rows, packer.stats, max_seq_len, shuffle=shuffle)

    @classmethod
    def from_dataset(
        cls, name: str, dataset, tokenizer, max_seq_len: int, *, text_column: str = "text", **kwargs
    ):
        """Pack a map-style `datasets.Dataset` (or any sequence of dicts with `text_column`)."""
        column_names = getattr(dataset, "column_names", None)
        if column_names is not None and text_column not in column_names:
            raise KeyError(f"source {name!r} has no column {text_column!r}; its columns are {column_names}")
        texts = dataset[text_column] if column_names is not None else (doc[text_column] for doc in dataset)
        return cls.from_texts(name, texts, tokenizer, max_seq_len, **kwargs)

    @classmethod
    def from_token_ids(
        cls,
        name: str,
        documents: Iterable,
        max_seq_len: int,
        *,
        keep_tail: bool = False,
        shuffle: bool = True,
    ) -> PackedRows:
        """Pack already tokenized documents (token-id sequences, special tokens included)."""
        packer = SequencePacker(max_seq_len, keep_tail=keep_tail)
        rows = [row for ids in documents for row in packer.add(ids)] + packer.finish()
        return cls(name, rows, packer.stats, max_seq_len, shuffle=shuffle)

    @property
    def finite_rows(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> Row:
        start, end = self._offsets[index], self._offsets[index + 1]
        return {"input_ids": self._ids[start:end], "position_ids": self._pos[start:end]}


@dataclass(frozen=True)
class StreamPosition:
    """Where a streaming source stands after a row: in pass `epoch`, the document that continues next is
    the one after the dataset state `dataset_state` (None: the first of the pass), of which `offset`
    tokens were already packed. JSON-able; resuming from it reads one document again, not the rows before."""

    epoch: int = 0
    dataset_state: dict | None = None
    offset: int = 0


class StreamingPackedSource(PackedSource):
    """Rows packed on the fly from a streaming dataset (or any re-iterable of dicts).

    An epoch is one pass over the stream; a `datasets.IterableDataset` gets `set_epoch(epoch)` so its
    own shuffle buffer (if any) reshuffles. The row count is unknown until a pass ends.

    Scale: `for_process(n, r)` gives process `r` its share of the files (`split_dataset_by_node`: whole
    files when their number divides by `n`, else every n-th document), and inside DataLoader workers
    `datasets` hands each worker its own files, so each process and worker reads and tokenizes only its
    own documents (the tokenizer runs in the workers, off the training loop). Every row comes with its
    `StreamPosition`, built from `IterableDataset.state_dict()`: resuming loads the state and re-reads
    one document, whatever the number of rows read before.
    """

    def __init__(
        self,
        name: str,
        dataset,
        tokenizer,
        max_seq_len: int,
        *,
        text_column: str = "text",
        keep_tail: bool = False,
    ):
        self.name, self.dataset, self.tokenizer = name, dataset, tokenizer
        self.max_seq_len, self.text_column, self.keep_tail = max_seq_len, text_column, keep_tail
        self.stats = PackingStats()
        self.split = False  # True once each reader has its own share of the documents

    @property
    def finite_rows(self) -> None:
        return None

    @property
    def splits_by_worker(self) -> bool:
        """Whether DataLoader workers each read their own files (a `datasets.IterableDataset` does)."""
        import datasets

        return isinstance(self.dataset, datasets.IterableDataset)

    @property
    def num_files(self) -> int:
        """Files (shards) this reader's dataset has; 1 for a plain iterable."""
        return getattr(self.dataset, "num_shards", 1)

    def for_process(self, num_processes: int, index: int) -> StreamingPackedSource:
        """This source as process `index` of `num_processes` reads it (itself with one process, or when
        the dataset is a plain iterable, which every process then reads whole)."""
        if num_processes == 1 or not self.splits_by_worker:
            return self
        from datasets.distributed import split_dataset_by_node

        share = copy.copy(self)
        share.dataset = split_dataset_by_node(self.dataset, rank=index, world_size=num_processes)
        share.split = True
        return share

    def iter_epoch(self, epoch: int, seed: int) -> Iterator[Row]:
        for row, _ in self.rows_from(StreamPosition(epoch)):
            yield row

    def rows_from(self, start: StreamPosition) -> Iterator[tuple[Row, StreamPosition | None]]:
        """(row, position after it) from `start` to the end of its pass. The positions are None for a
        source without `state_dict()` (a plain iterable), which can only be read from the start of a pass."""
        dataset = copy.copy(self.dataset)  # a loaded state stays with this pass
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(start.epoch)
        stateful = hasattr(dataset, "state_dict")
        if start.dataset_state is not None:
            dataset.load_state_dict(start.dataset_state)
        packer = SequencePacker(self.max_seq_len, keep_tail=self.keep_tail)
        before, skip = start.dataset_state, start.offset  # the state before the next document
        for texts, states in _document_batches(dataset, self.text_column, stateful):
            for ids, after in zip(_texts_to_token_ids(texts, self.tokenizer), states):
                length, room = len(ids), self.max_seq_len - packer.fill
                for k, row in enumerate(packer.add(ids[skip:])):
                    taken = skip + room + k * self.max_seq_len  # tokens of this document packed so far
                    position = (
                        StreamPosition(start.epoch, after)
                        if taken >= length
                        else StreamPosition(start.epoch, before, taken)
                    )
                    yield row, position if stateful else None
                before, skip = after, 0
        for row in packer.finish():  # the kept tail ends the pass
            yield row, StreamPosition(start.epoch, before) if stateful else None
        self.stats = packer.stats
        logger.info(
            "streaming source %r finished epoch %d: %s", self.name, start.epoch, packer.stats.as_dict()
        )


def _document_batches(dataset, text_column: str, stateful: bool, size: int = 256):
    """(texts, dataset state after each) in batches, so that tokenizing stays batched."""
    texts, states = [], []
    for document in dataset:
        texts.append(document.get(text_column))
        states.append(dataset.state_dict() if stateful else None)
        if len(texts) == size:
            yield texts, states
            texts, states = [], []
    if texts:
        yield texts, states


def _stable_hash(text: str) -> int:
    """A process-independent 32-bit hash (Python's `hash` of str is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))
