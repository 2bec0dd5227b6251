"""ESCI as a search collection: judged queries, and a product corpus whose text comes from a template.

`load_search_collection(specs)` reads

- a directory holding the official release pair under its own names (`shopping_queries_dataset_examples.parquet`
  + `shopping_queries_dataset_products.parquet`: `query_id`, `product_locale`, `split`, `small_version`, and the
  product's title, brand, colour, bullet points and HTML description);
- the two files given one by one, or any table with query / product text / label columns (a product text
  column, or title and description; products are then the distinct texts);
- a Hub dataset in the same layouts (`tasksource/esci`: examples joined with product text).

Each product's text is `product_template`, a Python format string over the ESCI product columns, with HTML
removed and whitespace collapsed (`DEFAULT_PRODUCT_TEMPLATE`: title, brand, colour, bullet points,
description: what a shopper sees, most telling first, so truncation to the model's length drops the end of
the description first). `locale` keeps one marketplace; `small_version` keeps the task-1 subset.

Splits are by query: the release's own `split` column when there is one, else a seeded hash of the query
(`split_by_query`), so a query is either trained on or held out. Bad input is one `DataFormatError` naming
the file: labels outside E/S/C/I, a missing column, an empty split. Judgments whose product is missing from
the products file are counted (`missing_products`) and left out, as are queries left with no judged product
(`queries_without_products`).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .esci import _normalise_labels, _query_key, _read_spec, split_by_query
from .tables import DataFormatError, clean_text, first_column

__all__ = [
    "DEFAULT_PRODUCT_TEMPLATE",
    "EXAMPLES_FILENAME",
    "NDCG_GAINS",
    "PRODUCTS_FILENAME",
    "PRODUCT_COLUMNS",
    "SearchCollection",
    "load_search_collection",
    "product_texts",
]

EXAMPLES_FILENAME = "shopping_queries_dataset_examples.parquet"
PRODUCTS_FILENAME = "shopping_queries_dataset_products.parquet"
PRODUCT_COLUMNS = (
    "product_title",
    "product_brand",
    "product_color",
    "product_bullet_point",
    "product_description",
)
DEFAULT_PRODUCT_TEMPLATE = (
    "{product_title} {product_brand} {product_color} {product_bullet_point} {product_description}"
)
# The ESCI paper's gains for nDCG (Reddy et al. 2022, section 5: E 1.0, S 0.1, C 0.01, I 0).
NDCG_GAINS = {"E": 1.0, "S": 0.1, "C": 0.01, "I": 0.0}

_PRODUCT_TEXT = ("product_text",)
_TITLE = ("product_title", "title")


@dataclass
class SearchCollection:
    """Judgments (`query_id`, `query`, `product_id`, `esci_label`, `split`) and products (`product_id`,
    `text`), with what loading left out and the template that made the texts."""

    judgments: pd.DataFrame
    products: pd.DataFrame
    product_template: str
    sources: list[str]
    counts: dict[str, int] = field(default_factory=dict)

    def split(self, name: str) -> SearchCollection:
        """The judgments of one split, and the products they judge (the corpus a split is searched in)."""
        judged = self.judgments[self.judgments["split"] == name].reset_index(drop=True)
        if judged.empty:
            splits = sorted(self.judgments["split"].unique())
            raise DataFormatError(f"{self.sources}: the {name!r} split is empty (splits: {splits})")
        products = self.products[self.products["product_id"].isin(set(judged["product_id"]))]
        return SearchCollection(
            judged, products.reset_index(drop=True), self.product_template, self.sources, self.counts
        )

    @property
    def queries(self) -> dict[str, str]:
        """query id -> query text, in first-seen order."""
        first = self.judgments.drop_duplicates("query_id")
        return dict(zip(first["query_id"], first["query"]))

    def text_of(self) -> dict[str, str]:
        return dict(zip(self.products["product_id"], self.products["text"]))


def product_texts(products: pd.DataFrame, template: str, source: str = "products") -> pd.Series:
    """Each product's text from `template` (see the module docstring); unknown fields are one error."""
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    unknown = sorted(set(fields) - set(products.columns))
    if unknown:
        raise DataFormatError(
            f"{source}: product_template names {unknown}, not columns of the products (they have "
            f"{sorted(c for c in products.columns if c.startswith('product_'))})"
        )
    cleaned = {name: products[name].map(clean_text) for name in set(fields)}
    rows = (dict(zip(cleaned, values)) for values in zip(*cleaned.values()))
    return pd.Series([" ".join(template.format(**row).split()) for row in rows], index=products.index)


def _expand(specs: Sequence[str]) -> list[str]:
    """A directory holding the release pair becomes its two files; any other directory is read as a dataset
    folder (a Hub dataset's layout, by `datasets`)."""
    files = []
    for spec in map(str, specs):
        folder = Path(spec)
        pair = [folder / EXAMPLES_FILENAME, folder / PRODUCTS_FILENAME]
        if folder.is_dir() and any(p.is_file() for p in pair):
            missing = [p.name for p in pair if not p.is_file()]
            if missing:
                raise DataFormatError(f"{folder}: no {' or '.join(missing)} (the ESCI release pair) in it")
            files += [str(p) for p in pair]
        else:
            files.append(spec)
    return files


def _read(spec: str, split: str) -> pd.DataFrame:
    """A file, a dataset folder or a Hub dataset id, as a DataFrame."""
    if Path(spec).is_dir():
        import datasets

        try:
            return datasets.load_dataset(spec, split=split).to_pandas()
        except Exception as error:  # the loader boundary: name the folder and what datasets said
            raise DataFormatError(f"{spec}: not a dataset folder with a {split!r} split ({error})") from None
    return _read_spec(spec, split=split)


def _judgments(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [c for c in ("query", "esci_label") if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{source}: judgments need the columns {missing}; found {list(frame.columns)}")
    query_ids = (
        frame["query_id"].astype(str) if "query_id" in frame.columns else frame["query"].map(_query_key)
    )
    table = pd.DataFrame(
        {
            "query_id": query_ids,
            "query": frame["query"].astype(str),
            "esci_label": _normalise_labels(frame, source),
            "split": frame["split"].astype(str) if "split" in frame.columns else "",
        }
    )
    for column in ("product_id", "product_locale", "small_version"):
        if column in frame.columns:
            table[column] = frame[column].to_numpy()
    return table


def _with_product_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """`frame` with `product_id`, `product_title` and the template's columns: a table with only
    `product_text` (or `title`) gets its title from there and its ids from the texts."""
    frame = frame.copy()
    if "product_title" not in frame.columns and "title" in frame.columns:
        frame["product_title"] = frame["title"]
    text_column = first_column(frame, _PRODUCT_TEXT)
    if "product_title" not in frame.columns and text_column is not None:
        frame["product_title"] = frame[text_column]
    if "product_title" not in frame.columns:
        raise DataFormatError(f"{source}: no product text (product_title, title or product_text)")
    if "product_id" not in frame.columns:
        frame["product_id"] = frame["product_title"].map(lambda text: f"text:{_query_key(text)}")
    for column in PRODUCT_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    frame["product_id"] = frame["product_id"].astype(str)
    return frame


def load_search_collection(
    specs: Sequence[str],
    *,
    product_template: str = DEFAULT_PRODUCT_TEMPLATE,
    locale: str | None = None,
    small_version: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
    hub_split: str = "train",
) -> SearchCollection:
    """The collection in `specs` (see the module docstring)."""
    judgments, products = [], []
    for spec in _expand(specs):
        frame = _read(spec, hub_split)
        has_judgments = {"query", "esci_label"} <= set(frame.columns)
        has_text = first_column(frame, (*_TITLE, *_PRODUCT_TEXT)) is not None
        if has_judgments:
            if has_text:  # judgments joined with their product text: the products come with them
                frame = _with_product_columns(frame, spec)
                products.append(frame.drop_duplicates("product_id"))
            elif "product_id" not in frame.columns:
                raise DataFormatError(f"{spec}: judgments without product text need a product_id column")
            judgments.append(_judgments(frame, spec))
        elif has_text:
            products.append(_with_product_columns(frame, spec).drop_duplicates("product_id"))
        else:
            raise DataFormatError(
                f"{spec}: neither judgments (query + esci_label) nor products (product_id + product_title); "
                f"found {list(frame.columns)}"
            )
    if not judgments:
        raise DataFormatError(f"{list(map(str, specs))}: no judgments (query + esci_label) among the inputs")
    if not products:
        raise DataFormatError(f"{list(map(str, specs))}: no product text; give the products file too")
    judged = pd.concat(judgments, ignore_index=True)
    catalogue = pd.concat(products, ignore_index=True).drop_duplicates("product_id").reset_index(drop=True)
    counts: dict[str, int] = {}
    if locale is not None:
        for name, table in (("judgments", judged), ("products", catalogue)):
            if "product_locale" not in table.columns:
                raise DataFormatError(
                    f"{list(map(str, specs))}: locale={locale!r} but the {name} have no product_locale"
                )
        judged = judged[judged["product_locale"] == locale]
        catalogue = catalogue[catalogue["product_locale"] == locale]
    if small_version:
        if "small_version" not in judged.columns:
            raise DataFormatError(
                f"{list(map(str, specs))}: small_version=true but the judgments have no such column"
            )
        judged = judged[judged["small_version"].astype(int) == 1]
    known = judged["product_id"].astype(str).isin(set(catalogue["product_id"]))
    counts["missing_products"] = int((~known).sum())
    queries_before = judged["query_id"].nunique()
    judged = judged[known].assign(product_id=lambda t: t["product_id"].astype(str))
    counts["queries_without_products"] = int(queries_before - judged["query_id"].nunique())
    judged = judged.drop_duplicates(["query_id", "product_id"]).reset_index(drop=True)
    if judged.empty:
        raise DataFormatError(
            f"{list(map(str, specs))}: no judgment is left ({counts['missing_products']} name a product the "
            f"products lack{f', locale {locale}' if locale else ''})"
        )
    if (judged["split"] == "").any():
        train, test = split_by_query(judged, test_fraction, seed)
        judged = pd.concat([train.assign(split="train"), test.assign(split="test")], ignore_index=True)
    catalogue = catalogue[catalogue["product_id"].isin(set(judged["product_id"]))].reset_index(drop=True)
    texts = product_texts(catalogue, product_template, source=str(list(map(str, specs))))
    corpus = pd.DataFrame({"product_id": catalogue["product_id"], "text": texts})
    counts["empty_texts"] = int((corpus["text"] == "").sum())
    corpus = corpus[corpus["text"] != ""].reset_index(drop=True)
    judged = judged[judged["product_id"].isin(set(corpus["product_id"]))].reset_index(drop=True)
    columns = ["query_id", "query", "product_id", "esci_label", "split"]
    return SearchCollection(judged[columns], corpus, product_template, list(map(str, specs)), counts)
