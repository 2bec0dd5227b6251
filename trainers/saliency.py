"""Domain-saliency lexicon for Guided MLM.

A token is domain-salient when it is much more frequent in the domain corpus than in a general one.
`build_saliency_lexicon` measures that as a smoothed log-odds ratio per token id,

    score(t) = log((c_d(t) + a) / (N_d + a V)) - log((c_g(t) + a) / (N_g + a V)),

with c_d, c_g the token's counts, N_d, N_g the corpus sizes, V the vocabulary size and `a` an
additive (Laplace) prior that keeps rare tokens from getting extreme scores. Only tokens seen at
least `min_count` times in the domain with a positive score (and, by default, with a letter or
digit: brands, units and attribute words rather than punctuation) are kept; everything else has
saliency 0, which the collator treats as "not salient".

The lexicon is stored as JSON (`saliency_lexicon.json`, next to the model or checkpoint) with
each token's id *and* string, so loading it against a different tokenizer fails loudly instead of
steering the masking toward the wrong tokens.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from rexbert_core.safe_outputs import atomic_write_text

from .packing import encode_batch

__all__ = ["LEXICON_FILENAME", "SaliencyLexicon", "build_saliency_lexicon", "count_tokens"]

LEXICON_FILENAME = "saliency_lexicon.json"
_FORMAT_VERSION = 1


@dataclass
class SaliencyLexicon:
    """Saliency score per token id (positive scores only), with how they were computed."""

    scores: dict[int, float]
    tokens: dict[int, str]
    vocab_size: int
    settings: dict = field(default_factory=dict)

    def as_tensor(self, size: int | None = None) -> torch.Tensor:
        """Float tensor of length `size` (default the tokenizer's vocabulary) with 0 for unlisted ids."""
        table = torch.zeros(size or self.vocab_size, dtype=torch.float32)
        if self.scores:
            ids = torch.tensor(list(self.scores), dtype=torch.long)
            if int(ids.max()) >= table.numel():
                raise ValueError(f"lexicon has token id {int(ids.max())} beyond a table of {table.numel()}")
            table[ids] = torch.tensor(list(self.scores.values()), dtype=torch.float32)
        return table

    def top(self, k: int = 20) -> list[tuple[str, float]]:
        """The `k` most salient tokens as (token string, score), best first."""
        best = sorted(self.scores.items(), key=lambda item: -item[1])[:k]
        return [(self.tokens[token_id], score) for token_id, score in best]

    def save(self, path: str | Path) -> Path:
        """Write JSON to `path`, or to `path/saliency_lexicon.json` when `path` is a directory."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            path = path / LEXICON_FILENAME
        entries = [
            {"id": token_id, "token": self.tokens[token_id], "score": round(score, 6)}
            for token_id, score in sorted(self.scores.items(), key=lambda item: -item[1])
        ]
        payload = {
            "format_version": _FORMAT_VERSION,
            "vocab_size": self.vocab_size,
            "settings": self.settings,
            "tokens": entries,
        }
        atomic_write_text(path, json.dumps(payload, indent=1, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: str | Path, tokenizer=None) -> SaliencyLexicon:
        """Read a saved lexicon (file or directory holding one); with `tokenizer`, check that every
        id still maps to the same token string."""
        path = Path(path)
        if path.is_dir():
            path = path / LEXICON_FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"saliency lexicon not found: {path}")
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported lexicon format_version {payload.get('format_version')!r}")
        entries = payload["tokens"]
        lexicon = cls(
            scores={int(e["id"]): float(e["score"]) for e in entries},
            tokens={int(e["id"]): e["token"] for e in entries},
            vocab_size=int(payload["vocab_size"]),
            settings=payload.get("settings", {}),
        )
        if tokenizer is not None:
            current = tokenizer.convert_ids_to_tokens(list(lexicon.tokens))
            wrong = [(i, t, c) for (i, t), c in zip(lexicon.tokens.items(), current) if t != c]
            if wrong:
                raise ValueError(
                    f"{path} was built with another tokenizer: {len(wrong)} ids map to different tokens, "
                    f"e.g. id {wrong[0][0]} is {wrong[0][1]!r} in the lexicon but {wrong[0][2]!r} now"
                )
        return lexicon


def count_tokens(
    texts: Iterable[str], tokenizer, vocab_size: int, batch_size: int = 1000, progress: str | None = None
) -> np.ndarray:
    """Token-id counts over `texts` (special tokens excluded); `progress` labels a progress bar."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    batch: list[str] = []
    bar = hf_logging.tqdm(desc=progress, unit="doc", disable=progress is None or None)

    def flush() -> None:
        if batch:
            ids = encode_batch(tokenizer, batch, add_special_tokens=False)
            flat = np.concatenate([np.asarray(seq, dtype=np.int64) for seq in ids])
            counts[:] += np.bincount(flat, minlength=vocab_size)[:vocab_size]
            bar.update(len(batch))
            batch.clear()

    for text in texts:
        if isinstance(text, str) and text.strip():
            batch.append(text)
            if len(batch) == batch_size:
                flush()
    flush()
    bar.close()
    return counts


def build_saliency_lexicon(
    domain_texts: Iterable[str],
    general_texts: Iterable[str],
    tokenizer,
    *,
    smoothing: float = 1.0,
    min_count: int = 5,
    max_tokens: int | None = None,
    words_only: bool = True,
) -> SaliencyLexicon:
    """Smoothed log-odds of each token's domain frequency against its general frequency.

    Args:
        domain_texts: text of the target domain (e.g. product titles).
        general_texts: general text to contrast it with.
        tokenizer: the tokenizer the model trains with.
        smoothing: additive prior `a` per token and corpus.
        min_count: a token needs at least this many domain occurrences to be listed.
        max_tokens: keep only the most salient tokens (None keeps all positive scores).
        words_only: keep only tokens with a letter or digit (no punctuation or whitespace tokens).
    """
    vocab_size = len(tokenizer)
    domain = count_tokens(domain_texts, tokenizer, vocab_size, progress="lexicon: domain text")
    general = count_tokens(general_texts, tokenizer, vocab_size, progress="lexicon: general text")
    if domain.sum() == 0 or general.sum() == 0:
        empty = "domain" if domain.sum() == 0 else "general"
        raise ValueError(f"cannot build a saliency lexicon: the {empty} corpus has no tokens")
    log_p_domain = np.log(domain + smoothing) - math.log(domain.sum() + smoothing * vocab_size)
    log_p_general = np.log(general + smoothing) - math.log(general.sum() + smoothing * vocab_size)
    score = log_p_domain - log_p_general
    special = set(tokenizer.all_special_ids)
    keep = [int(i) for i in np.flatnonzero((score > 0) & (domain >= min_count)) if int(i) not in special]
    token_strings = dict(zip(keep, tokenizer.convert_ids_to_tokens(keep)))
    if words_only:  # punctuation and layout tokens say nothing about the domain's vocabulary
        keep = [
            i
            for i in keep
            if any(ch.isalnum() for ch in tokenizer.convert_tokens_to_string([token_strings[i]]))
        ]
    keep.sort(key=lambda i: -score[i])
    if max_tokens is not None:
        keep = keep[:max_tokens]
    return SaliencyLexicon(
        scores={int(i): float(score[i]) for i in keep},
        tokens={i: token_strings[i] for i in keep},
        vocab_size=vocab_size,
        settings={
            "statistic": "smoothed log-odds",
            "smoothing": smoothing,
            "min_count": min_count,
            "max_tokens": max_tokens,
            "words_only": words_only,
            "domain_tokens": int(domain.sum()),
            "general_tokens": int(general.sum()),
        },
    )
