"""Tokenized corpora on disk: the files `rexbert tokenize` writes and pretraining memory-maps.

The token files are datatrove's (`DocumentTokenizer`): per shard, `NNNNN.ds` holds the token ids back to
back (uint16, or uint32 for vocabularies over 65,536 entries) and `NNNNN.ds.index` the end of every document
in tokens (uint64, little-endian). This package adds what training needs to trust them: a manifest with the
tokenizer's fingerprint, the token size and each shard's documents, tokens and bytes (`manifest.py`), and a
reader that memory-maps the shards of a source and checks them against the manifest first (`reader.py`).

    manifest    ShardsManifest (manifest.json), tokenizer_json / tokenizer_fingerprint
    reader      SourceTokens: one source's shards as one token stream with document ends

Ground floor: numpy and `typed_config` (its error types) only, so the writer (`curation`) and the reader
(`trainers`) share the format without importing each other.
"""

from .manifest import (
    MANIFEST_FILENAME,
    ShardInfo,
    ShardsManifest,
    SourceInfo,
    tokenizer_fingerprint,
    tokenizer_json,
)
from .reader import SourceTokens

__all__ = [
    "MANIFEST_FILENAME",
    "ShardInfo",
    "ShardsManifest",
    "SourceInfo",
    "SourceTokens",
    "tokenizer_fingerprint",
    "tokenizer_json",
]
