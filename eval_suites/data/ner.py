"""Span-annotated NER (the e-commerce NER format): sentences with end-exclusive character spans, turned into
whitespace tokens with BIO tags."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .tables import DataFormatError

__all__ = ["NerData", "load_span_ner", "spans_to_bio"]


@dataclass
class NerData:
    """Whitespace-tokenised sentences with BIO tags derived from character spans.

    `span_issues` counts spans BIO cannot hold as given: `duplicate` (same start/end/type twice),
    `overlapping` (overlaps an earlier or longer span; dropped), `misaligned` (an edge falls inside
    a token; tagged by overlap, or dropped when it covers no token).
    """

    tokens: list[list[str]]
    tags: list[list[str]]
    entity_types: list[str]
    span_issues: dict[str, int]

    @property
    def label_names(self) -> list[str]:
        return ["O"] + [f"{prefix}-{t}" for t in self.entity_types for prefix in ("B", "I")]


def _whitespace_tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def spans_to_bio(text: str, spans: Iterable[dict]) -> tuple[list[str], list[str], dict[str, int]]:
    """Whitespace tokens of `text` and their BIO tags from end-exclusive character spans.

    A token belongs to a span when their character ranges overlap; the first such token gets B-.
    Spans are taken by start, longer first; a span touching a token already tagged is dropped.
    Returns (tokens, tags, counts of duplicate / overlapping / misaligned spans).
    """
    tokens = _whitespace_tokens(text)
    tags = ["O"] * len(tokens)
    issues = {"duplicate": 0, "overlapping": 0, "misaligned": 0}
    seen = set()
    for span in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        key = (span["start"], span["end"], span["type"])
        if key in seen:
            issues["duplicate"] += 1
            continue
        seen.add(key)
        inside = [
            i for i, (_, start, end) in enumerate(tokens) if start < span["end"] and end > span["start"]
        ]
        if any(tags[i] != "O" for i in inside):
            issues["overlapping"] += 1
            continue
        if not inside or tokens[inside[0]][1] != span["start"] or tokens[inside[-1]][2] != span["end"]:
            issues["misaligned"] += 1
        for position, index in enumerate(inside):
            tags[index] = f"{'B' if position == 0 else 'I'}-{span['type']}"
    return [t for t, _, _ in tokens], tags, issues


def load_span_ner(path: str | Path, text_key: str = "sentences", spans_key: str = "spans") -> NerData:
    """Read span-annotated jsonl(.gz): one `{"sentences": str, "spans": [{start, end, type}]}` per line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    tokens, tags, types = [], [], set()
    issues = {"duplicate": 0, "overlapping": 0, "misaligned": 0}
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if text_key not in record or spans_key not in record:
                raise DataFormatError(
                    f"{path}:{number}: a record needs '{text_key}' and '{spans_key}'; found {sorted(record)}"
                )
            for span in record[spans_key]:
                if not {"start", "end", "type"} <= set(span):
                    raise DataFormatError(
                        f"{path}:{number}: a span needs start, end and type; found {sorted(span)}"
                    )
                types.add(span["type"])
            sentence_tokens, sentence_tags, sentence_issues = spans_to_bio(
                record[text_key], record[spans_key]
            )
            if sentence_tokens:
                tokens.append(sentence_tokens)
                tags.append(sentence_tags)
            issues = {name: issues[name] + count for name, count in sentence_issues.items()}
    if not tokens:
        raise DataFormatError(f"{path}: no annotated sentences")
    return NerData(tokens, tags, sorted(types), issues)
