"""Loaders that turn the real benchmark formats into one normalised table per task, one module per format:

    tables  reading parquet / csv / tsv / json(l) files, and the cell helpers the loaders share
    esci    ESCI query/product pairs with product text (official pair, Hub layout, CSV exports, judgments
            joined with product records), split by query
    glue    GLUE tasks from the original folders or a Hub id
    ner     span-annotated NER as whitespace tokens with BIO tags

Every loader returns plain Python / `datasets` structures with fixed column names, and raises a
`DataFormatError` that names the file and the problem when an input cannot be used.
"""

from .esci import (
    ESCI_GAINS,
    ESCI_LABEL_ALIASES,
    ESCI_LABELS,
    PAIR_COLUMNS,
    EsciPairs,
    load_esci_pairs,
    load_product_texts,
    product_table,
    split_by_query,
)
from .glue import GLUE_TASKS, GlueData, GlueTask, load_glue_task
from .ner import NerData, load_span_ner, spans_to_bio
from .tables import DataFormatError, read_table

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
