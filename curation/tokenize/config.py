"""`TokenizeConfig`: what `rexbert tokenize` makes (sources, tokenizer, executor), and the files a source
names."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from curation.config import ExecutorConfig
from rexbert_core.typed_config import DataError

__all__ = ["READERS", "TokenizeConfig", "file_suffix"]

READERS = {".parquet": "ParquetReader", ".jsonl": "JsonlReader", ".json": "JsonlReader"}


@dataclass
class TokenizeConfig:
    """What `rexbert tokenize` makes: `sources` maps a source name to its input files (globs allowed),
    `datasets` a source name to a `datasets` source (`ID` or `ID:CONFIG`: a Hub id, or a local dataset
    folder), read streaming by datatrove's `HuggingFaceDatasetReader` in `dataset_tasks` tasks (with more
    than one, task t reads every t-th file, so the shards no longer follow the dataset's order)."""

    output_dir: str
    tokenizer: str
    sources: dict[str, list[str]]
    text_column: str = "text"
    workers: int = 1
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    datasets: dict[str, str] = field(default_factory=dict)
    dataset_tasks: int = 1
    split: str = "train"

    @property
    def names(self) -> list[str]:
        return [*self.sources, *self.datasets]

    def files(self, name: str) -> list[str]:
        """The input files of a source, globs expanded, sorted within each pattern, in the order given."""
        found: list[str] = []
        for pattern in self.sources[name]:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not matches or not all(os.path.isfile(path) for path in matches):
                raise DataError(f"--source {name}: no input file at {pattern!r}")
            found += [os.path.abspath(path) for path in matches]
        suffixes = {file_suffix(path) for path in found}
        if len(suffixes) != 1 or next(iter(suffixes)) not in READERS:
            raise DataError(
                f"--source {name}: files must all be parquet or all json(l) (optionally .gz), "
                f"got {sorted(suffixes)}"
            )
        return found

    def record(self, tokenizer_id: str) -> dict:
        """What decides the shards (kept with the output to refuse a changed command)."""
        record = {
            "tokenizer": tokenizer_id,
            "sources": {name: self.files(name) for name in self.sources},
            "text_column": self.text_column,
        }
        if self.datasets:
            record.update(datasets=self.datasets, dataset_tasks=self.dataset_tasks, split=self.split)
        return record


def file_suffix(path: str) -> str:
    parts = [part for part in os.path.basename(path).split(".")[1:] if part != "gz"]
    return "." + parts[-1] if parts else ""
