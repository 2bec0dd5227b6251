"""Reading the tables the benchmark files come in, and the cell-level helpers every loader shares."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from rexbert_core.typed_config import DataError

__all__ = ["DataFormatError", "clean_text", "first_column", "is_hub_id", "read_table"]

_TAG = re.compile(r"<[^>]+>")


class DataFormatError(DataError):
    """An input file or dataset cannot be used as given; the message says which and why."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a parquet / csv / tsv / json / jsonl file (optionally .gz, .zst) into a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes:
        return pd.read_parquet(path)
    if ".csv" in suffixes:
        return pd.read_csv(path, keep_default_na=False)
    if ".tsv" in suffixes:
        return pd.read_csv(
            path, sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8-sig", keep_default_na=False
        )
    if {".jsonl", ".ndjson"} & set(suffixes):
        return pd.read_json(path, lines=True)
    if ".json" in suffixes:
        try:
            return pd.read_json(path, lines=True)
        except ValueError:
            return pd.read_json(path)
    raise DataFormatError(f"{path}: unsupported file type (use parquet, csv, tsv, json or jsonl)")


def first_column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((name for name in names if name in frame.columns), None)


def clean_text(value) -> str:
    """Text of one cell: lists joined, HTML tags and entities removed, whitespace collapsed."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):  # ESCI-S bullets: a list of strings
        value = " ".join(str(v) for v in value)
    text = html.unescape(_TAG.sub(" ", str(value)))
    return " ".join(text.split())


def is_hub_id(spec: str) -> bool:
    return not Path(spec).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", spec) is not None
