"""ESCI (Shopping Queries) loaders: query/product pairs with product text, and product records.

ESCI (query, product, E/S/C/I label) comes in several shapes, all accepted by `load_esci_pairs`:

- the official pair of files: `shopping_queries_dataset_examples.parquet` (query, product_id,
  esci_label, ...) + `shopping_queries_dataset_products.parquet` (product_id, product_title, ...);
- the Hub layout of `tasksource/esci` (examples already joined with product text; labels spelled
  out as Exact/Substitute/Complement/Irrelevant), as a Hub id or as local parquet/csv/jsonl files;
- CSV exports with one `product_text` column instead of title/description;
- judgments without text (e.g. `esci_us_judgments.parquet`: query, product_id, esci_label), usable
  only when joined with product records: ESCI products or ESCI-S records (`asin`, `title`,
  `description`, `bullets`; json/jsonl, optionally compressed).

A file that cannot be used is a `DataFormatError` naming it and the problem.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Sequence

import datasets
import pandas as pd

from .tables import DataFormatError, clean_text, first_column, is_hub_id, read_table

__all__ = [
    "ESCI_GAINS",
    "ESCI_LABELS",
    "ESCI_LABEL_ALIASES",
    "PAIR_COLUMNS",
    "EsciPairs",
    "load_esci_pairs",
    "load_product_texts",
    "product_table",
    "split_by_query",
]

ESCI_LABELS = ("E", "S", "C", "I")
ESCI_LABEL_ALIASES = {
    "e": "E",
    "exact": "E",
    "s": "S",
    "substitute": "S",
    "c": "C",
    "complement": "C",
    "i": "I",
    "irrelevant": "I",
}
ESCI_GAINS = {"E": 1.0, "S": 0.66, "C": 0.33, "I": 0.0}
PAIR_COLUMNS = ("query_id", "query", "product_id", "product_title", "product_description", "esci_label")

# Column spellings across the formats, first match wins.
_PRODUCT_ID = ("product_id", "asin", "id")
_TITLE = ("product_title", "title")
_DESCRIPTION = ("product_description", "description")
_TEXT = ("product_text",)
logger = logging.getLogger(__name__)


def _normalise_labels(frame: pd.DataFrame, source: str) -> pd.Series:
    raw = frame["esci_label"].astype(str)
    known = raw.str.strip().str.lower().map(ESCI_LABEL_ALIASES)
    unknown = sorted(set(raw[known.isna()]))
    if unknown:
        raise DataFormatError(
            f"{source}: unknown ESCI labels {unknown[:10]} in column 'esci_label'; expected E/S/C/I "
            "(or Exact/Substitute/Complement/Irrelevant)"
        )
    return known


def product_table(frame: pd.DataFrame, source: str = "products") -> pd.DataFrame:
    """Normalise product records (ESCI products, ESCI-S, catalog dumps) to id/title/description."""
    id_col, title_col = first_column(frame, _PRODUCT_ID), first_column(frame, _TITLE)
    if id_col is None or title_col is None:
        raise DataFormatError(
            f"{source}: product records need an id column ({'/'.join(_PRODUCT_ID)}) and a title column "
            f"({'/'.join(_TITLE)}); found {list(frame.columns)}"
        )
    desc_col = first_column(frame, _DESCRIPTION)
    table = pd.DataFrame(
        {
            "product_id": frame[id_col].astype(str),
            "product_title": frame[title_col].map(clean_text),
            "product_description": frame[desc_col].map(clean_text) if desc_col else "",
        }
    )
    return table.drop_duplicates("product_id").reset_index(drop=True)


def load_product_texts(specs: Sequence[str]) -> pd.DataFrame:
    """Product titles and descriptions from product files or ESCI pair files (deduplicated by id).

    Accepts any file `read_table` reads that holds product records, including ESCI pair files
    that carry text (Hub layout). A file with only an aggregated `product_text` column (title,
    description and bullets run together) counts as description text, with no title. ESCI pair
    files without text (examples, judgments) are passed over; if no file has text,
    `DataFormatError` is raised.
    """
    tables = []
    for spec in specs:
        frame = _read_spec(spec)
        if _kind(frame) == "pairs":  # judgments / examples without text: nothing to read here
            logger.info("%s: ESCI pairs without product text, not used for product texts", spec)
            continue
        text_col = first_column(frame, _TEXT)
        if first_column(frame, _TITLE) is None and text_col is not None:
            frame = frame.assign(product_title="", product_description=frame[text_col])
            if first_column(frame, _PRODUCT_ID) is None:
                frame = frame.assign(product_id=[f"{spec}#{i}" for i in range(len(frame))])
        tables.append(product_table(frame, source=str(spec)))
    if not tables:
        raise DataFormatError(
            f"{list(map(str, specs))}: no file with product text (title/description/product_text)"
        )
    products = pd.concat(tables).drop_duplicates("product_id").reset_index(drop=True)
    has_text = (products["product_title"].str.len() > 0) | (products["product_description"].str.len() > 0)
    products = products[has_text].reset_index(drop=True)
    if products.empty:
        raise DataFormatError(f"{list(specs)}: no product has any text")
    return products


def _read_spec(spec: str, split: str = "train") -> pd.DataFrame:
    """A local file, or a Hub dataset id (its `split`), as a DataFrame."""
    if is_hub_id(str(spec)):
        try:
            return datasets.load_dataset(str(spec), split=split).to_pandas()
        except Exception as error:  # offline, unknown id, missing split: say which dataset failed
            raise DataFormatError(f"could not load Hub dataset {spec} (split {split}): {error}") from error
    return read_table(spec)


def _kind(frame: pd.DataFrame) -> str:
    has_pairs = {"query", "esci_label"} <= set(frame.columns)
    has_text = first_column(frame, _TITLE + _TEXT) is not None
    if has_pairs:
        return "pairs_with_text" if has_text else "pairs"
    if has_text and first_column(frame, _PRODUCT_ID):
        return "products"
    return "unknown"


def _pairs_table(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    if "product_id" not in frame.columns:
        frame = frame.assign(product_id=[f"{source}#{i}" for i in range(len(frame))])
    if "query_id" not in frame.columns:
        frame = frame.assign(query_id=frame["query"].map(_query_key))
    table = pd.DataFrame(
        {
            "query_id": frame["query_id"].astype(str),
            "query": frame["query"].astype(str),
            "product_id": frame["product_id"].astype(str),
            "esci_label": _normalise_labels(frame, source),
        }
    )
    if first_column(frame, _TITLE + _TEXT) is not None:
        title_col = first_column(frame, _TITLE) or first_column(frame, _TEXT)
        desc_col = first_column(frame, _DESCRIPTION)
        table["product_title"] = frame[title_col].map(clean_text).to_numpy()
        table["product_description"] = frame[desc_col].map(clean_text).to_numpy() if desc_col else ""
    return table


def _query_key(query: str) -> str:
    return hashlib.sha1(str(query).strip().lower().encode()).hexdigest()[:12]


@dataclass
class EsciPairs:
    """Normalised ESCI query/product pairs plus what loading dropped, and why."""

    frame: pd.DataFrame
    sources: list[str]
    dropped_without_text: int = 0
    dropped_empty_title: int = 0

    def __len__(self) -> int:
        return len(self.frame)


def load_esci_pairs(specs: Sequence[str], split: str = "train") -> EsciPairs:
    """Load ESCI pairs with product text from any mix of the supported files or a Hub id.

    Files are sorted by what their columns hold: pairs with text are used as they are; pairs
    without text (official examples file, judgments) are joined on product_id with every product
    file given (ESCI products, ESCI-S records). Pairs whose product has no text are counted in
    `dropped_without_text`, never silently lost.
    """
    pairs_with_text, bare_pairs, products = [], [], []
    for spec in specs:
        frame = _read_spec(spec, split=split)
        kind = _kind(frame)
        if kind == "pairs_with_text":
            pairs_with_text.append(_pairs_table(frame, str(spec)))
        elif kind == "pairs":
            bare_pairs.append(_pairs_table(frame, str(spec)))
        elif kind == "products":
            products.append(product_table(frame, str(spec)))
        else:
            raise DataFormatError(
                f"{spec}: not an ESCI file: need columns query + esci_label (pairs) or product_id/asin + "
                f"product_title/title (products); found {list(frame.columns)}"
            )
    dropped = 0
    if bare_pairs:
        if not products:
            raise DataFormatError(
                f"{[str(s) for s in specs]}: the ESCI pairs carry no product text (judgments only); also "
                "pass a product file (ESCI products parquet or ESCI-S records with asin/title) to join on "
                "product_id"
            )
        catalog = pd.concat(products).drop_duplicates("product_id")
        joined = pd.concat(bare_pairs).merge(catalog, on="product_id", how="left")
        dropped = int(joined["product_title"].isna().sum())
        pairs_with_text.append(joined.dropna(subset=["product_title"]))
    if not pairs_with_text:
        raise DataFormatError(f"{[str(s) for s in specs]}: no ESCI pairs found (only product records)")
    frame = pd.concat(pairs_with_text, ignore_index=True)[list(PAIR_COLUMNS)]
    empty = frame["product_title"].str.len() == 0
    frame = frame[~empty].reset_index(drop=True)
    if frame.empty:
        raise DataFormatError(
            f"{[str(s) for s in specs]}: no ESCI pair with product text is left ({dropped} pairs had no "
            f"matching product record, {int(empty.sum())} an empty title)"
        )
    return EsciPairs(frame, [str(s) for s in specs], dropped, int(empty.sum()))


def split_by_query(frame: pd.DataFrame, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split pairs into train/test by query (no query appears on both sides), deterministically.

    Queries are ordered by a seeded hash of their id, so the split does not depend on row order.
    Needs at least two distinct queries; each side gets at least one.
    """
    queries = sorted(
        frame["query_id"].unique(), key=lambda q: hashlib.sha1(f"{seed}:{q}".encode()).hexdigest()
    )
    if len(queries) < 2:
        raise DataFormatError(f"splitting by query needs at least 2 distinct queries, got {len(queries)}")
    n_test = min(len(queries) - 1, max(1, round(len(queries) * test_fraction)))
    test_queries = set(queries[:n_test])
    is_test = frame["query_id"].isin(test_queries)
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)
