"""One source of a tokenized corpus as a single token stream with document boundaries, memory-mapped.

Opening a source reads only the manifest and each shard's size and last document end: a shard whose file is
shorter or longer than the manifest says, or whose index does not end where its tokens do, is refused by
name before training starts. Token ranges and document boundaries are then read on demand, so a process
touches only the pages of the rows it uses, and the corpus never has to fit in memory.

Every read is checked: the blocks it touches against the digests recorded with the manifest, each block the
first time (`safe_outputs.BlockChecks`; `verify=True` checks every block at open), and the ids against the
vocabulary. Damage is refused naming the file and the byte range, before any of it is trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rexbert_core.safe_outputs import BlockChecks
from rexbert_core.typed_config import DataError

from .manifest import ShardInfo, ShardsManifest

__all__ = ["SourceTokens"]

INDEX_DTYPE = np.dtype("<u8")


class SourceTokens:
    """The shards of source `name` in `directory`, in manifest order, as one stream of token ids.

    `fingerprint`: the training tokenizer's (`tokenizer_fingerprint`); shards made with another are refused.
    `verify`: check every block of every shard now, rather than each the first time it is read.
    """

    def __init__(
        self, directory: str | Path, name: str, *, fingerprint: str | None = None, verify: bool = False
    ):
        self.directory, self.name = Path(directory), name
        manifest = ShardsManifest.load(directory)
        if fingerprint is not None and fingerprint != manifest.tokenizer_fingerprint:
            raise DataError(
                f"{self.directory}: tokenized with another tokenizer (fingerprint "
                f"{manifest.tokenizer_fingerprint}, this run's is {fingerprint}); tokenize again with this one"
            )
        self.manifest = manifest
        info = manifest.source(name)
        dtype = np.dtype("<u2") if manifest.token_size == 2 else np.dtype("<u4")
        self.vocab_size = manifest.vocab_size
        self._tokens: list[np.ndarray] = []
        self._doc_ends: list[np.ndarray] = []
        self._checks: list[tuple[BlockChecks, BlockChecks] | None] = []
        for shard in info.shards:
            tokens, doc_ends = self._open(shard.file, shard.tokens, shard.documents, dtype)
            self._tokens.append(tokens)
            self._doc_ends.append(doc_ends)
            self._checks.append(self._block_checks(shard, tokens, doc_ends))
            if verify and self._checks[-1] is not None:
                for checks in self._checks[-1]:
                    checks.verify_all()
        self.token_starts = np.cumsum([0] + [shard.tokens for shard in info.shards], dtype=np.int64)
        self.document_starts = np.cumsum([0] + [shard.documents for shard in info.shards], dtype=np.int64)
        self.num_tokens = int(self.token_starts[-1])
        self.num_documents = int(self.document_starts[-1])

    def _open(self, file: str, tokens: int, documents: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        path = self.directory / file
        index = path.with_name(path.name + ".index")
        for each, expected in ((path, tokens * dtype.itemsize), (index, documents * INDEX_DTYPE.itemsize)):
            if not each.is_file():
                raise DataError(f"{each} is missing (listed in {self.directory / 'manifest.json'})")
            size = each.stat().st_size
            if size != expected:
                raise DataError(f"{each} is truncated or damaged: {size} bytes, the manifest says {expected}")
        if tokens == 0:
            return np.zeros(0, dtype=dtype), np.zeros(0, dtype=INDEX_DTYPE)
        token_map = np.memmap(path, dtype=dtype, mode="r")
        doc_ends = np.memmap(index, dtype=INDEX_DTYPE, mode="r")
        if int(doc_ends[-1]) != tokens:
            raise DataError(
                f"{index} is damaged: its last document ends at {int(doc_ends[-1])}, not {tokens}"
            )
        return token_map, doc_ends

    def _block_checks(self, shard: ShardInfo, tokens: np.ndarray, doc_ends: np.ndarray):
        if not shard.checksums or shard.tokens == 0:
            return None
        path = self.directory / shard.file
        block_size = int(shard.checksums["block_size"])
        return (
            BlockChecks(path, tokens, shard.checksums["tokens"], block_size),
            BlockChecks(path.with_name(path.name + ".index"), doc_ends, shard.checksums["index"], block_size),
        )

    def _token_slice(self, shard: int, start: int, stop: int) -> np.ndarray:
        """Tokens `[start, stop)` of one shard, its blocks checked, its ids inside the vocabulary."""
        array = self._tokens[shard]
        if self._checks[shard] is not None:
            self._checks[shard][0].check(start * array.itemsize, stop * array.itemsize)
        piece = array[start:stop]
        if piece.size and int(piece.max()) >= self.vocab_size:
            at = start + int(np.argmax(piece >= self.vocab_size))
            size, file = array.itemsize, self.directory / self._shard_file(shard)
            raise DataError(
                f"{file}: token id {int(array[at])} at bytes {at * size:,}-{(at + 1) * size - 1:,} is beyond "
                f"the vocabulary ({self.vocab_size} ids): the shard is damaged or was made for another tokenizer"
            )
        return piece

    def _index_slice(self, shard: int, start: int, stop: int) -> np.ndarray:
        """Document ends `[start, stop)` of one shard's index, its blocks checked."""
        ends = self._doc_ends[shard]
        if self._checks[shard] is not None:
            self._checks[shard][1].check(start * ends.itemsize, stop * ends.itemsize)
        return ends[start:stop]

    def _shard_file(self, shard: int) -> str:
        return self.manifest.source(self.name).shards[shard].file

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Token ids `[start, stop)` of the stream as int32 (across shard boundaries when needed)."""
        first = int(np.searchsorted(self.token_starts, start, side="right")) - 1
        pieces, position = [], start
        shard = first
        while position < stop:
            offset = int(self.token_starts[shard])
            end = min(stop, int(self.token_starts[shard + 1]))
            pieces.append(self._token_slice(shard, position - offset, end - offset))
            position, shard = end, shard + 1
        return np.concatenate(pieces).astype(np.int32) if len(pieces) > 1 else pieces[0].astype(np.int32)

    def boundaries(self, start: int, stop: int) -> np.ndarray:
        """Stream positions strictly inside `(start, stop)` where a document starts (int64, ascending)."""
        found = []
        shard = int(np.searchsorted(self.token_starts, start, side="right")) - 1
        while shard < len(self._tokens) and self.token_starts[shard] < stop:
            offset = int(self.token_starts[shard])
            ends = self._doc_ends[shard]
            lo = int(np.searchsorted(ends, start - offset, side="right"))
            hi = int(np.searchsorted(ends, stop - offset, side="left"))
            found.append(self._index_slice(shard, lo, hi).astype(np.int64) + offset)
            shard += 1
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def document_span(self, index: int) -> tuple[int, int]:
        """(start, end) stream offsets of document `index` (0-based, in stream order)."""
        if not 0 <= index < self.num_documents:
            raise IndexError(f"document {index} is not in [0, {self.num_documents})")
        shard = int(np.searchsorted(self.document_starts, index, side="right")) - 1
        local = index - int(self.document_starts[shard])
        ends, offset = self._index_slice(shard, max(local - 1, 0), local + 1), int(self.token_starts[shard])
        return offset + (int(ends[0]) if local else 0), offset + int(ends[-1])

    def document(self, index: int) -> np.ndarray:
        """The token ids of document `index`, as int32."""
        return self.tokens(*self.document_span(index))
