"""Reading one source of a mixture row by row across epochs, from any starting row count (`SourceCursor`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from rexbert_core.typed_config import DataError

from .packing import PackedSource, RandomAccessRows, Row, StreamingPackedSource, StreamPosition

__all__ = ["ON_EXHAUSTED", "SourceCursor", "SourceExhaustedError"]

logger = logging.getLogger(__name__)

ON_EXHAUSTED = ("recycle", "stop")


class SourceExhaustedError(DataError):
    """A source ran out of rows and the stream was told not to recycle it."""


class SourceCursor:
    """Reads one source row by row across epochs, from any starting row count.

    A random-access source (`RandomAccessRows`) is positioned by arithmetic: resuming at any row count, or
    skipping another process's rows, costs nothing per row and reads nothing from the source. A streaming
    source resumes from its saved `StreamPosition` (one document re-read); without one it is read from the
    start and the rows taken are dropped. When every reader has its own share of a streaming source's
    documents (`shared=False`), other readers' rows are not read at all.
    """

    def __init__(
        self,
        source: PackedSource,
        seed: int,
        rows_taken: int,
        on_exhausted: str,
        position: StreamPosition | None = None,
        shared: bool = True,
    ):
        self.source, self.seed, self.on_exhausted, self.shared = source, seed, on_exhausted, shared
        self.rows_taken, self.epoch, self.position = 0, 0, position
        if isinstance(source, RandomAccessRows):
            self.epoch, self.offset = divmod(rows_taken, source.finite_rows)
            if on_exhausted == "stop" and self.epoch > 0:  # already dry: the next read raises
                self.epoch, self.offset = 0, source.finite_rows
            self.order = source.epoch_order(self.epoch, seed)
            self.rows_taken = rows_taken
            return
        if position is not None:
            self.epoch, self.rows_taken = position.epoch, rows_taken
            self._rows = self._stream(position)
            return
        if rows_taken and not shared:
            raise DataError(
                f"source {source.name!r}: no saved stream position for this reader, and its documents are "
                "split between readers: resume with the processes and dataloader workers of the saved run"
            )
        self._rows = self._stream(StreamPosition(0))
        while self.rows_taken < rows_taken:  # no saved position: fast-forward by reading
            self.next()

    def _stream(self, start: StreamPosition) -> Iterator[tuple[Row, StreamPosition | None]]:
        if isinstance(self.source, StreamingPackedSource):
            return self.source.rows_from(start)
        return ((row, None) for row in self.source.iter_epoch(start.epoch, self.seed))

    def next(self) -> Row:
        if isinstance(self.source, RandomAccessRows):
            self._step()
            return self.source[int(self.order[self.offset - 1])]
        item = next(self._rows, None)
        if item is None:
            self._start_next_epoch()
            item = next(self._rows, None)
            if item is None:
                raise SourceExhaustedError(f"source {self.source.name!r} yields no rows at all")
        self.rows_taken += 1
        row, self.position = item
        return row

    def skip(self) -> None:
        """Pass over one row (another process's or worker's) without reading it where the source allows."""
        if isinstance(self.source, RandomAccessRows):
            self._step()
        elif self.shared:
            self.next()

    def _step(self) -> None:
        if self.offset == len(self.order):
            self._start_next_epoch()
        self.offset += 1
        self.rows_taken += 1

    def _start_next_epoch(self) -> None:
        if self.on_exhausted == "stop":
            raise SourceExhaustedError(
                f"source {self.source.name!r} ran dry after {self.rows_taken} rows (epoch {self.epoch + 1}); "
                "give it more data, lower its mixture weight or set on_exhausted: recycle"
            )
        self.epoch += 1
        logger.warning(
            "source %r ran dry after %d rows: starting epoch %d",
            self.source.name,
            self.rows_taken,
            self.epoch + 1,
        )
        if isinstance(self.source, RandomAccessRows):
            self.order, self.offset = self.source.epoch_order(self.epoch, self.seed), 0
        else:
            self._rows = self._stream(StreamPosition(self.epoch))
