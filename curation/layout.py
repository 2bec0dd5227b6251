"""Where a curation run keeps its outputs, intermediate shards and logs, under one output folder.

corpus/             the curated shards (*.parquet, or *.jsonl.gz)
report/             report.json, report.md, plots/*.png (`REPORT_FILENAME`, `REPORT_MARKDOWN`)
rejects/            bad input records, one jsonl per source and task
removed/<stage>/    documents a stage removed (with `filter_reason`), when `output.write_removed`
logs/<step list>/   datatrove's logs, stats and completion markers of each executor
work/               intermediate shards and dedup signatures
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["CORPUS_SUFFIXES", "OUTPUT_ENTRIES", "REPORT_FILENAME", "REPORT_MARKDOWN", "CorpusLayout"]

REPORT_FILENAME = "report.json"
REPORT_MARKDOWN = "report.md"
CORPUS_SUFFIXES = {"parquet": ".parquet", "jsonl": ".jsonl.gz"}  # shard file ending per `output.format`

_FOLDERS = {
    "corpus": "corpus",
    "report": "report",
    "rejects": "rejects",
    "removed": "removed",
    "logs": "logs",
    "filtered": "work/filtered",
    "deduped": "work/exact_deduped",
    "exact_sigs": "work/exact/sigs",
    "exact_dups": "work/exact/dups",
    "minhash_sigs": "work/minhash/sigs",
    "minhash_buckets": "work/minhash/buckets",
    "minhash_remove": "work/minhash/remove",
    "id_sigs": "work/ids/sigs",
    "id_dups": "work/ids/dups",
}


OUTPUT_ENTRIES = (
    "corpus",
    "report",
    "rejects",
    "removed",
    "logs",
    "work",
)  # the top-level entries a run creates


@dataclass(frozen=True)
class CorpusLayout:
    """The folders of one curation run below `root` (see the module docstring)."""

    root: str

    def __getattr__(self, name: str) -> str:
        if name not in _FOLDERS:
            raise AttributeError(name)
        return os.path.join(self.root, _FOLDERS[name])

    @property
    def report_file(self) -> str:
        """report.json, the corpus report."""
        return os.path.join(self.report, REPORT_FILENAME)

    def shards(self, output_format: str = "parquet") -> str:
        """A glob of the corpus shards."""
        return os.path.join(self.corpus, "*" + CORPUS_SUFFIXES[output_format])

    def removed_stage(self, stage: str) -> str:
        return os.path.join(self.removed, stage)

    def step_logs(self, step_list: str) -> str:
        return os.path.join(self.logs, step_list)
