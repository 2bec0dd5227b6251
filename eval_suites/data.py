"""Loaders that turn the real benchmark formats into one normalised table per task.

ESCI (query, product, E/S/C/I label) comes in several shapes, all accepted by `load_esci_pairs`:

- the official pair of files: `shopping_queries_dataset_examples.parquet` (query, product_id,
  esci_label, ...) + `shopping_queries_dataset_products.parquet` (product_id, product_title, ...);
- the Hub layout of `tasksource/esci` (examples already joined with product text; labels spelled
  out as Exact/Substitute/Complement/Irrelevant), as a Hub id or as local parquet/csv/jsonl files;
- CSV exports with one `product_text` column instead of title/description;
- judgments without text (e.g. `esci_us_judgments.parquet`: query, product_id, esci_label), usable
  only when joined with product records: ESCI products or ESCI-S records (`asin`, `title`,
  `description`, `bullets`; json/jsonl, optionally compressed).

Every loader returns plain Python / `datasets` structures with fixed column names, and raises a
`DataFormatError` that names the file and the problem when an input cannot be used.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import datasets
import pandas as pd

from rexbert_core.typed_config import DataError

__all__ = [
    "ESCI_GAINS",
    "ESCI_LABELS",
    "ESCI_LABEL_ALIASES",
    "GLUE_TASKS",
    "PAIR_COLUMNS",
    "DataFormatError",
    "EsciPairs",
    "GlueData",
    "GlueTask",
    "NerData",
    "load_esci_pairs",
    "load_glue_task",
    "load_product_texts",
    "load_span_ner",
    "product_table",
    "read_table",
    "spans_to_bio",
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
_TAG = re.compile(r"<[^>]+>")
logger = logging.getLogger(__name__)


class DataFormatError(DataError):
    """An input file or dataset cannot be used as given; the message says which and why."""


# ---------------------------------------------------------------- reading tables


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


def _first_column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((name for name in names if name in frame.columns), None)


def _clean_text(value) -> str:
    """Text of one cell: lists joined, HTML tags and entities removed, whitespace collapsed."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if not isinstance(value, str) and hasattr(value, "__iter__"):  # ESCI-S bullets: a list of strings
        value = " ".join(str(v) for v in value)
    text = html.unescape(_TAG.sub(" ", str(value)))
    return " ".join(text.split())


def _is_hub_id(spec: str) -> bool:
    return not Path(spec).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", spec) is not None


# ---------------------------------------------------------------- ESCI labels


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


# ---------------------------------------------------------------- product records


def product_table(frame: pd.DataFrame, source: str = "products") -> pd.DataFrame:
    """Normalise product records (ESCI products, ESCI-S, catalog dumps) to id/title/description."""
    id_col, title_col = _first_column(frame, _PRODUCT_ID), _first_column(frame, _TITLE)
    if id_col is None or title_col is None:
        raise DataFormatError(
            f"{source}: product records need an id column ({'/'.join(_PRODUCT_ID)}) and a title column "
            f"({'/'.join(_TITLE)}); found {list(frame.columns)}"
        )
    desc_col = _first_column(frame, _DESCRIPTION)
    table = pd.DataFrame(
        {
            "product_id": frame[id_col].astype(str),
            "product_title": frame[title_col].map(_clean_text),
            "product_description": frame[desc_col].map(_clean_text) if desc_col else "",
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
        text_col = _first_column(frame, _TEXT)
        if _first_column(frame, _TITLE) is None and text_col is not None:
            frame = frame.assign(product_title="", product_description=frame[text_col])
            if _first_column(frame, _PRODUCT_ID) is None:
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
    if _is_hub_id(str(spec)):
        try:
            return datasets.load_dataset(str(spec), split=split).to_pandas()
        except Exception as error:  # offline, unknown id, missing split: say which dataset failed
            raise DataFormatError(f"could not load Hub dataset {spec} (split {split}): {error}") from error
    return read_table(spec)


# ---------------------------------------------------------------- ESCI pairs


def _kind(frame: pd.DataFrame) -> str:
    has_pairs = {"query", "esci_label"} <= set(frame.columns)
    has_text = _first_column(frame, _TITLE + _TEXT) is not None
    if has_pairs:
        return "pairs_with_text" if has_text else "pairs"
    if has_text and _first_column(frame, _PRODUCT_ID):
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
    if _first_column(frame, _TITLE + _TEXT) is not None:
        title_col = _first_column(frame, _TITLE) or _first_column(frame, _TEXT)
        desc_col = _first_column(frame, _DESCRIPTION)
        table["product_title"] = frame[title_col].map(_clean_text).to_numpy()
        table["product_description"] = frame[desc_col].map(_clean_text).to_numpy() if desc_col else ""
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


# ---------------------------------------------------------------- GLUE


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task: where its files live and how its columns and labels are spelled."""

    name: str  # the Hub config name (cola, sst2, ...)
    folder: str  # the folder name in the original GLUE download
    text_columns: tuple[tuple[str, ...], ...]  # candidate spellings of text_a, text_b
    label_columns: tuple[str, ...]
    label_names: tuple[str, ...] = ()  # text labels in the TSVs, in Hub id order
    dev_file: str = "dev.tsv"
    hub_validation: str = "validation"
    headerless_columns: tuple[str, ...] = ()

    @property
    def is_regression(self) -> bool:
        return self.name == "stsb"

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else max(2, len(self.label_names))


GLUE_TASKS = {
    task.name: task
    for task in (
        GlueTask(
            "cola",
            "CoLA",
            (("sentence",),),
            ("label",),
            headerless_columns=("source", "label", "orig_label", "sentence"),
        ),
        GlueTask("sst2", "SST-2", (("sentence",),), ("label",)),
        GlueTask(
            "mrpc", "MRPC", (("#1 String", "sentence1"), ("#2 String", "sentence2")), ("Quality", "label")
        ),
        GlueTask("stsb", "STS-B", (("sentence1",), ("sentence2",)), ("score", "label")),
        GlueTask("qqp", "QQP", (("question1",), ("question2",)), ("is_duplicate", "label")),
        GlueTask(
            "mnli",
            "MNLI",
            (("sentence1", "premise"), ("sentence2", "hypothesis")),
            ("gold_label", "label"),
            ("entailment", "neutral", "contradiction"),
            "dev_matched.tsv",
            "validation_matched",
        ),
        GlueTask(
            "qnli", "QNLI", (("question",), ("sentence",)), ("label",), ("entailment", "not_entailment")
        ),
        GlueTask(
            "rte", "RTE", (("sentence1",), ("sentence2",)), ("label",), ("entailment", "not_entailment")
        ),
    )
}


def _normalise_glue_frame(frame: pd.DataFrame, task: GlueTask, source: str) -> datasets.Dataset:
    """Columns text_a, (text_b), label with Hub label ids (or float scores for STS-B)."""
    columns = {}
    for position, candidates in zip(("text_a", "text_b"), task.text_columns):
        found = _first_column(frame, candidates)
        if found is None:
            raise DataFormatError(
                f"{source}: GLUE {task.name} needs a column {' or '.join(candidates)}; "
                f"found {list(frame.columns)}"
            )
        columns[position] = frame[found].astype(str).tolist()
    label_col = _first_column(frame, task.label_columns)
    if label_col is None:
        raise DataFormatError(
            f"{source}: GLUE {task.name} has no label column ({'/'.join(task.label_columns)})"
        )
    columns["label"] = _glue_labels(frame[label_col], task, source)
    return datasets.Dataset.from_dict(columns)


def _glue_labels(values: pd.Series, task: GlueTask, source: str) -> list:
    if task.is_regression:
        return pd.to_numeric(values).astype(float).tolist()
    text = values.astype(str).str.strip()
    if task.label_names and text.isin(task.label_names).all():
        return text.map({name: i for i, name in enumerate(task.label_names)}).astype(int).tolist()
    numeric = pd.to_numeric(text, errors="coerce")
    valid = numeric.isin(range(task.num_labels))
    if not valid.all():
        bad = sorted(set(text[~valid]))[:10]
        raise DataFormatError(f"{source}: unknown GLUE {task.name} labels {bad} (unlabeled test split?)")
    return numeric.astype(int).tolist()


def _read_glue_tsv(path: Path, task: GlueTask) -> tuple[pd.DataFrame, int]:
    """A GLUE TSV as strings, and the number of malformed lines skipped (wrong field count, as in
    some QQP/MNLI releases). The fast C parser is tried first."""
    options = {
        "sep": "\t",
        "quoting": csv.QUOTE_NONE,
        "encoding": "utf-8-sig",
        "keep_default_na": False,
        "dtype": str,
    }
    if task.headerless_columns:
        options.update(header=None, names=list(task.headerless_columns))
    try:
        return pd.read_csv(path, **options), 0
    except pd.errors.ParserError:
        malformed: list[list[str]] = []
        frame = pd.read_csv(path, engine="python", on_bad_lines=malformed.append, **options)
        logger.warning("%s: skipped %d malformed lines", path, len(malformed))
        return frame, len(malformed)


def _glue_task_folder(root: Path, task: GlueTask) -> Path | None:
    wanted = {task.folder.lower(), task.name.lower()}
    return next((p for p in sorted(root.iterdir()) if p.is_dir() and p.name.lower() in wanted), None)


@dataclass
class GlueData:
    """Train and validation sets of one task; `train_source` says where the train set came from."""

    train: datasets.Dataset
    validation: datasets.Dataset
    train_source: str
    malformed_lines: int = 0


def load_glue_task(spec: str, task_name: str, seed: int = 0) -> GlueData | str:
    """Load one GLUE task from a local GLUE folder or a Hub id (e.g. `nyu-mll/glue`).

    Returns the data, or a string saying why the task is skipped (no folder, no files). A task
    with a dev set but no train set (QNLI here) is split: half of the dev set, chosen with `seed`,
    becomes the train set and the other half the validation set (`train_source="dev-split"`).
    """
    task = GLUE_TASKS[task_name]
    if _is_hub_id(spec):
        try:
            splits = datasets.load_dataset(spec, task.name)
        except Exception as error:  # unreachable Hub, missing config: the task is skipped, with why
            return f"could not load {spec}/{task.name}: {type(error).__name__}: {str(error)[:200]}"
        columns = {
            "train": splits["train"].to_pandas(),
            "validation": splits[task.hub_validation].to_pandas(),
        }
        return GlueData(
            *(
                _normalise_glue_frame(columns[s], task, f"{spec}/{task.name}/{s}")
                for s in ("train", "validation")
            ),
            train_source="train",
        )
    root = Path(spec)
    if not root.is_dir():
        raise DataFormatError(
            f"{spec}: GLUE data must be a folder of task folders (CoLA, SST-2, ...) or a Hub id"
        )
    folder = _glue_task_folder(root, task)
    if folder is None:
        return "no data"
    dev_path = folder / task.dev_file
    if not dev_path.is_file():
        return f"no {task.dev_file} in {folder}"
    dev_frame, malformed = _read_glue_tsv(dev_path, task)
    validation = _normalise_glue_frame(dev_frame, task, str(dev_path))
    train_path = next(
        (p for p in (folder / "train.tsv", *sorted(folder.glob("*train*.tsv"))) if p.is_file()), None
    )
    if train_path is not None:
        train_frame, malformed_train = _read_glue_tsv(train_path, task)
        train = _normalise_glue_frame(train_frame, task, str(train_path))
        return GlueData(train, validation, train_path.name, malformed + malformed_train)
    halves = validation.train_test_split(test_size=0.5, seed=seed)
    return GlueData(halves["train"], halves["test"], "dev-split", malformed)


# ---------------------------------------------------------------- span-annotated NER


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
