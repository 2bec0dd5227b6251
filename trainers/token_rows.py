"""Packed rows cut straight from a tokenized corpus on disk (`rexbert tokenize`), without tokenizing again.

Packing (`packing.SequencePacker`) writes documents back to back and cuts a row every `max_seq_len`
tokens, position ids restarting where a document starts and at the start of every row. So row `r` is
simply tokens `[r * L, (r + 1) * L)` of the source's token stream, and its position ids follow from the
document ends inside that range: no pass over the corpus is needed to find a row, any `seq_len` works on
the same shards (phases 2 and 3 at 8,192 reuse phase 1's), and a row is read from the memory-mapped
shards only when a batch needs it. On the same documents in the same order this gives exactly the rows of
the in-memory path (`PackedRows.from_texts`), shuffled per epoch by the same seeded bijection
(`row_order.RowOrder`).

Held-out validation documents (a seeded draw, `trainers.validation`) are cut out of the stream: the
training stream is the shards' stream with those few documents removed, so every offset maps to the
shards with one binary search over the holes. `max_docs` keeps the first documents only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rexbert_core.token_shards import SourceTokens

from .packing import RandomAccessRows, Row

__all__ = ["ShardStats", "ShardedRows"]


@dataclass
class ShardStats:
    """What the rows of a sharded source hold (the packer's counts that need no pass over the corpus; blank
    documents were counted by `rexbert tokenize`, in the manifest)."""

    documents: int
    tokens: int
    rows: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class ShardedRows(RandomAccessRows):
    """Rows of `max_seq_len` tokens of one tokenized source (see the module docstring).

    `held_out`: sorted indices of documents to leave out (validation); `max_docs`: use only the first ones;
    `keep_tail`: keep the last, shorter row (dropped otherwise, as the packer does).
    """

    def __init__(
        self,
        name: str,
        tokens: SourceTokens,
        max_seq_len: int,
        *,
        shuffle: bool = True,
        held_out: np.ndarray | None = None,
        max_docs: int | None = None,
        keep_tail: bool = False,
    ):
        self.name, self.max_seq_len, self.shuffle, self.source = name, max_seq_len, shuffle, tokens
        documents = tokens.num_documents if max_docs is None else min(max_docs, tokens.num_documents)
        end = tokens.document_span(documents - 1)[1] if documents else 0
        holes = np.asarray([] if held_out is None else held_out, dtype=np.int64)
        spans = np.array([tokens.document_span(int(i)) for i in holes], dtype=np.int64).reshape(-1, 2)
        starts, lengths = spans[:, 0], spans[:, 1] - spans[:, 0]
        # A hole at physical `start` sits at kept offset `start - (hole tokens before it)`; from there on,
        # kept offsets are shifted by the holes' cumulative length.
        before = np.concatenate([[0], np.cumsum(lengths)])
        self._hole_at = starts - before[:-1]
        self._shift = before
        self.num_tokens = end - int(before[-1])
        self.num_documents = documents - len(holes)
        whole, rest = divmod(self.num_tokens, max_seq_len)
        self._rows = whole + int(keep_tail and rest > 0)
        self.stats = ShardStats(
            self.num_documents, min(self.num_tokens, self._rows * max_seq_len), self._rows
        )
        if self._rows == 0:
            raise ValueError(
                f"source {name!r} produced no packed row of {max_seq_len} tokens "
                f"({self.num_documents} documents, {self.num_tokens} tokens); "
                "give it more text or a shorter max_seq_len"
            )

    @property
    def finite_rows(self) -> int:
        return self._rows

    def __getitem__(self, index: int) -> Row:
        start = index * self.max_seq_len
        stop = min(start + self.max_seq_len, self.num_tokens)
        ids, boundaries = [], []
        for piece_start, piece_stop in self._pieces(start, stop):
            physical = piece_start + self._shift_at(piece_start)
            ids.append(self.source.tokens(physical, physical + piece_stop - piece_start))
            inside = self.source.boundaries(physical, physical + piece_stop - piece_start)
            boundaries.append(inside - physical + piece_start)
            if piece_start > start:  # a held-out document was cut out here: the next document starts
                boundaries.append(np.array([piece_start], dtype=np.int64))
        starts = np.sort(np.concatenate(boundaries)) - start
        input_ids = np.concatenate(ids) if len(ids) > 1 else ids[0]
        return {"input_ids": input_ids, "position_ids": _positions(len(input_ids), starts)}

    def _shift_at(self, kept: int) -> int:
        return int(self._shift[np.searchsorted(self._hole_at, kept, side="right")])

    def _pieces(self, start: int, stop: int) -> list[tuple[int, int]]:
        """`[start, stop)` in kept offsets, split where a held-out document was cut out."""
        cuts = self._hole_at[(self._hole_at > start) & (self._hole_at < stop)]
        edges = [start, *np.unique(cuts).tolist(), stop]
        return list(zip(edges[:-1], edges[1:]))


def _positions(length: int, starts: np.ndarray) -> np.ndarray:
    """Position ids of a row whose documents start at `starts` (row-relative, ascending, in (0, length))."""
    segment_starts = np.concatenate([[0], starts]).astype(np.int64)
    segment = np.searchsorted(starts, np.arange(length), side="right")
    return (np.arange(length) - segment_starts[segment]).astype(np.int32)
