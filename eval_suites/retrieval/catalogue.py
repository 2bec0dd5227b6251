"""A catalogue to embed: rows of product files with an id and one text made of several columns.

`catalogue_texts(files, columns, id_column)` reads parquet / csv / json(l) files and joins the chosen columns
of each row into one text: each value with HTML removed and whitespace collapsed, empty values left out, the
rest joined by a single space in the order given (`--columns title,description`: the title first, so a
model's length limit cuts the description). Rows whose text is empty are counted and left out; an id column
that is missing or repeats an id is one error naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from eval_suites.data.tables import DataFormatError, clean_text, read_table

__all__ = ["catalogue_texts"]


def catalogue_texts(
    files: Sequence[str], columns: Sequence[str], id_column: str = "id"
) -> tuple[list[str], list[str], int]:
    """(ids, texts, rows left out for an empty text)."""
    frames = []
    for path in files:
        frame = read_table(path)
        missing = [c for c in (id_column, *columns) if c not in frame.columns]
        if missing:
            raise DataFormatError(
                f"{path}: no column {missing}; it has {list(frame.columns)} (see --columns, --id-column)"
            )
        frames.append(frame[[id_column, *columns]])
    table = pd.concat(frames, ignore_index=True)
    ids = table[id_column].astype(str)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise DataFormatError(
            f"{list(files)}: {len(repeated)} repeated ids in {id_column!r} (first: {repeated.iloc[0]!r})"
        )
    cleaned = [table[c].map(clean_text) for c in columns]
    texts = [" ".join(value for value in values if value) for values in zip(*cleaned)]
    kept = [(i, t) for i, t in zip(ids, texts) if t]
    return [i for i, _ in kept], [t for _, t in kept], len(texts) - len(kept)
