"""`manifest.json` of a tokenized corpus: which tokenizer made it, and what every shard holds.

Every shard's token file and index carry SHA-256 digests per block (`checksums`, written with the manifest;
`safe_outputs.block_digests`): the reader checks each block the first time it reads from it. Manifests of the
first format (no checksums) are still read; their damage shows only as ids beyond the vocabulary.

The tokenizer is identified by a fingerprint of its `tokenizer.json` content (vocabulary, merges,
normalizer, pre-tokenizer, post-processor, special tokens), taken without the truncation and padding
settings, which change how texts are cut for a model but not which ids they get. Shards made with another
tokenizer are refused by comparing fingerprints, so a vocabulary or a special-token change can never feed a
model ids it does not expect.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rexbert_core.typed_config import DataError

__all__ = [
    "FORMAT",
    "MANIFEST_FILENAME",
    "ShardInfo",
    "ShardsManifest",
    "SourceInfo",
    "tokenizer_fingerprint",
    "tokenizer_json",
]

FORMAT = "rexbert-token-shards/2"
FORMATS = ("rexbert-token-shards/1", FORMAT)  # /1: no checksums
MANIFEST_FILENAME = "manifest.json"


def tokenizer_json(tokenizer) -> str:
    """The canonical `tokenizer.json` text of a `tokenizers.Tokenizer` or a fast transformers tokenizer,
    without truncation and padding (the form the shards are written with and fingerprinted by)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    content = json.loads(backend.to_str())
    content["truncation"] = None
    content["padding"] = None
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-256 (first 16 hex digits) of `tokenizer_json(tokenizer)`."""
    return hashlib.sha256(tokenizer_json(tokenizer).encode("utf-8")).hexdigest()[:16]


@dataclass
class ShardInfo:
    """One shard: its token file (relative to the corpus directory), what it holds, and the block digests
    of its token file and index (`{"block_size": n, "tokens": [...], "index": [...]}`; None before /2)."""

    file: str
    documents: int
    tokens: int
    checksums: dict | None = None


@dataclass
class SourceInfo:
    """One source: its inputs, its shards in reading order, the documents set aside as blank, and every
    record rejected as bad input, by reason (`rexbert tokenize` writes them to `rejects/` with file and
    line)."""

    inputs: list[str]
    shards: list[ShardInfo]
    blank_documents: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def documents(self) -> int:
        return sum(shard.documents for shard in self.shards)

    @property
    def tokens(self) -> int:
        return sum(shard.tokens for shard in self.shards)


@dataclass
class ShardsManifest:
    """The manifest of a tokenized corpus directory."""

    tokenizer_fingerprint: str
    vocab_size: int
    token_size: int  # bytes per token id: 2 (uint16) or 4 (uint32)
    sources: dict[str, SourceInfo] = field(default_factory=dict)
    format: str = FORMAT

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_FILENAME
        document = asdict(self)
        for name, source in self.sources.items():
            document["sources"][name]["documents"] = source.documents
            document["sources"][name]["tokens"] = source.tokens
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ShardsManifest:
        path = Path(directory) / MANIFEST_FILENAME
        if not path.is_file():
            raise DataError(
                f"{directory} is not a tokenized corpus (no {MANIFEST_FILENAME}); make one with rexbert tokenize"
            )
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("format") not in FORMATS:
                raise DataError(f"{path}: format {document.get('format')!r}, expected one of {FORMATS}")
            sources = {
                name: SourceInfo(
                    inputs=list(source["inputs"]),
                    shards=[ShardInfo(**shard) for shard in source["shards"]],
                    blank_documents=int(source.get("blank_documents", 0)),
                    rejected={k: int(v) for k, v in source.get("rejected", {}).items()},
                )
                for name, source in document["sources"].items()
            }
            return cls(
                tokenizer_fingerprint=document["tokenizer_fingerprint"],
                vocab_size=int(document["vocab_size"]),
                token_size=int(document["token_size"]),
                sources=sources,
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, DataError):
                raise
            raise DataError(f"{path} is damaged: {type(error).__name__}: {error}") from None

    def source(self, name: str) -> SourceInfo:
        if name not in self.sources:
            raise DataError(f"the tokenized corpus has no source {name!r}; it has {sorted(self.sources)}")
        return self.sources[name]
