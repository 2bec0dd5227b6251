"""Small text helpers shared by the curation stages: token counting, word splitting, fastText input.

Token counts in the per-stage report come from a `TokenCounter`: either whitespace words (fast, the
default, good enough to compare stages) or a `tokenizers` tokenizer.json (the pretraining tokenizer,
for counts that match what the packer will see).
"""

from __future__ import annotations

import re
import string
from pathlib import Path

__all__ = [
    "TokenCounter",
    "dedup_words",
    "fasttext_bytes",
    "fasttext_line",
    "normalized_for_exact_dedup",
    "words",
]

_FASTTEXT_BYTES = bytes.maketrans(
    string.punctuation.encode() + b"\n\r\t", b" " * (len(string.punctuation) + 3)
)
_DEDUP_BYTES = bytes.maketrans(
    string.punctuation.encode() + string.digits.encode(), b" " * len(string.punctuation) + b"0" * 10
)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)


class TokenCounter:
    """Counts tokens of a text: ``"words"`` (whitespace split) or the path of a tokenizer.json file."""

    def __init__(self, kind: str = "words"):
        self.kind = kind
        self._tokenizer = None
        if kind != "words" and not Path(kind).is_file():
            raise FileNotFoundError(
                f"token_counter must be 'words' or an existing tokenizer.json, got {kind!r}"
            )

    def __call__(self, text: str) -> int:
        if self.kind == "words":
            return len(text.split())
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(self.kind)
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def __getstate__(self) -> dict:  # the Rust tokenizer is rebuilt lazily in each worker process
        return {"kind": self.kind, "_tokenizer": None}


def words(text: str) -> list[str]:
    """Alphanumeric words of a text (punctuation dropped); a cheap stand-in for a word tokenizer."""
    return _WORD.findall(text)


def fasttext_bytes(text: str) -> bytes:
    """The normalised one-line form fastText sees at training and prediction time, as UTF-8 bytes.

    Lower-cased, with ASCII punctuation and line breaks turned into spaces (fastText splits on spaces),
    so "USB-C Charger, 65W" and "usb c charger 65w" give the same tokens. Done as a byte translation,
    several times faster than a regular expression; fastText's binding takes the bytes as they are.
    """
    return text.lower().encode("utf-8", "replace").translate(_FASTTEXT_BYTES)


def fasttext_line(text: str) -> str:
    """`fasttext_bytes` as a string (for training files)."""
    return fasttext_bytes(text).decode("utf-8")


def dedup_words(text: str) -> list[bytes]:
    """Words compared by near-duplicate detection: lower-cased, punctuation dropped, digits as 0.

    The same simplification as datatrove's `simplify_text` (minus its Unicode accent folding) done as
    one byte translation, about 10x faster.
    """
    return text.lower().encode("utf-8", "replace").translate(_DEDUP_BYTES).split()


def normalized_for_exact_dedup(text: str) -> str:
    """Text with case and whitespace differences removed: the key of exact-duplicate detection."""
    return _SPACES.sub(" ", text.lower()).strip()
