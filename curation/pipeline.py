"""Assemble and run the curation pipeline as a chain of datatrove executors.

Stages, in order (each optional): read + validate -> domain pre-selection -> quality -> e-commerce
classifier -> language -> PII scrubbing -> exact dedup -> MinHash near-dup removal -> corpus shards.
Language id comes after the classifier because lid.176 costs several times more per document and the
classifier already drops most general web text.
Filtering runs in one executor over `tasks` shards; deduplication needs all shards' signatures, so it
runs as datatrove's multi-step ExactDedup and MinHash executors on the intermediate shards under
``<out>/work``. Every executor logs to ``<out>/logs/<step>`` and marks each finished task there, so a
re-run skips finished tasks (datatrove's completions) and the report is rebuilt from the saved stats.

Local runs use `LocalPipelineExecutor`; the same steps run unchanged on datatrove's Slurm or Ray
executors for corpora that outgrow one machine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from datatrove.data import Document, DocumentsPipeline
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
)
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig as DatatroveExactConfig
from datatrove.pipeline.dedup.minhash import MinhashConfig as DatatroveMinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

from curation.config import CurationConfig
from curation.readers import build_reader
from curation.stages import (
    DatatroveFilterStage,
    DomainPreselectFilter,
    EcomClassifierFilter,
    LanguageFilter,
    PIIScrubber,
    QualityFilter,
    Tally,
    WhitespaceMinhashSignature,
    exact_dedup_key,
)
from curation.text import TokenCounter

logger = logging.getLogger(__name__)

CORPUS_COLUMNS = ("id", "text", "source", "domain", "token_count", "ecom_score", "language", "language_score")


def corpus_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),
            ("domain", pa.string()),
            ("token_count", pa.int64()),
            ("ecom_score", pa.float64()),
            ("language", pa.string()),
            ("language_score", pa.float64()),
        ]
    )


def corpus_row(self, document: Document) -> dict:
    """Writer adapter: one flat corpus row (columns `CORPUS_COLUMNS`)."""
    metadata = document.metadata
    return {"id": document.id, "text": document.text, **{k: metadata.get(k) for k in CORPUS_COLUMNS[2:]}}


class RankFileReader(JsonlReader):
    """Reads the intermediate shard written by the same task rank (``<folder>/<rank>.jsonl.gz``).

    Dedup signatures and removal lists are indexed by task rank and document position, so each task
    must read exactly the shard its rank wrote, even when some ranks wrote none.
    """

    def __init__(self, folder: str):
        super().__init__(folder, add_file_path=False)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        filename = f"{rank:05d}.jsonl.gz"
        if self.data_folder.isfile(filename):
            yield from self.read_files_shard([filename])


@dataclass
class Paths:
    """Where a run keeps its outputs, intermediate shards and logs."""

    root: str

    def __getattr__(self, name: str) -> str:
        folders = {
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
        }
        if name not in folders:
            raise AttributeError(name)
        return os.path.join(self.root, folders[name])


class PipelineBuilder:
    """Turns a `CurationConfig` into the ordered list of (name, executor) to run."""

    def __init__(self, config: CurationConfig):
        self.config = config
        self.paths = Paths(config.output_dir)
        self.tokens = TokenCounter(config.token_counter)

    def _removed_writer(self, stage: str):
        if not self.config.output.write_removed:
            return None
        return JsonlWriter(os.path.join(self.paths.removed, stage), output_filename="${rank}.jsonl.gz")

    def _executor(self, name: str, pipeline: list, tasks: int) -> tuple[str, LocalPipelineExecutor]:
        return name, LocalPipelineExecutor(
            pipeline,
            tasks=tasks,
            workers=min(self.config.workers, tasks),
            logging_dir=os.path.join(self.paths.logs, name),
        )

    def _corpus_writer(self):
        out = self.config.output
        if out.format == "jsonl":
            return JsonlWriter(self.paths.corpus, output_filename="${rank}.jsonl.gz", adapter=corpus_row)
        return ParquetWriter(
            self.paths.corpus,
            output_filename="${rank}.parquet",
            adapter=corpus_row,
            schema=corpus_schema(),
            max_file_size=out.max_file_size_mb * 2**20,
        )

    def filter_steps(self) -> list:
        """Readers and the per-document stages."""
        c, stages = self.config, self.config.stages
        steps: list = [
            build_reader(s, c.limits, self.paths.rejects, self.tokens, c.progress) for s in c.sources
        ]
        if stages.domain_preselect.enabled and stages.domain_preselect.keep_domains:
            steps.append(
                DomainPreselectFilter(
                    stages.domain_preselect.keep_domains,
                    self.tokens,
                    self._removed_writer("domain_preselect"),
                )
            )
        if stages.quality.enabled:
            steps.extend(self._quality_steps())
        if stages.classifier.enabled:
            cls = stages.classifier
            steps.append(
                EcomClassifierFilter(
                    cls.model,
                    classifier_threshold(cls.model, cls.threshold),
                    self.tokens,
                    cls.line_level,
                    cls.line_threshold,
                    cls.min_line_words,
                    exclusion_writer=self._removed_writer("classifier"),
                )
            )
        if stages.language.enabled:
            lang = stages.language
            steps.append(
                LanguageFilter(
                    lang.languages,
                    lang.threshold,
                    self.tokens,
                    lang.model,
                    lang.short_doc_words,
                    lang.english_stopword_share,
                    exclusion_writer=self._removed_writer("language"),
                )
            )
        if stages.pii.enabled:
            steps.append(PIIScrubber(self.tokens, stages.pii.emails, stages.pii.phones, stages.pii.ips))
        steps.append(Tally("filtered"))
        return steps

    def _quality_steps(self) -> list:
        quality = self.config.stages.quality
        if quality.engine == "fast":
            return [QualityFilter(quality, self.tokens, self._removed_writer("quality"))]
        return [
            DatatroveFilterStage(name, kwargs or {}, self.tokens, self._removed_writer(f"quality_{name}"))
            for name, kwargs in quality.datatrove_filters.items()
        ]

    def _minhash_config(self) -> DatatroveMinhashConfig:
        m = self.config.stages.minhash_dedup
        return DatatroveMinhashConfig(
            n_grams=m.n_grams, num_buckets=m.num_buckets, hashes_per_bucket=m.hashes_per_bucket, seed=m.seed
        )

    def _handoff(self, folder: str, next_dedup: str | None) -> list:
        """End of an executor: the corpus, or an intermediate shard plus the next dedup's signatures."""
        if next_dedup is None:
            return [self._corpus_writer()]
        steps: list = [JsonlWriter(folder, output_filename="${rank}.jsonl.gz")]
        if next_dedup == "exact":
            steps.append(ExactDedupSignature(self.paths.exact_sigs, DatatroveExactConfig(exact_dedup_key)))
        else:
            steps.append(WhitespaceMinhashSignature(self.paths.minhash_sigs, self._minhash_config()))
        return steps

    def executors(self) -> list[tuple[str, LocalPipelineExecutor]]:
        stages, tasks = self.config.stages, self.config.tasks
        dedups = [
            d
            for d, on in (("exact", stages.exact_dedup.enabled), ("minhash", stages.minhash_dedup.enabled))
            if on
        ]
        runs = [
            self._executor(
                "filter",
                self.filter_steps() + self._handoff(self.paths.filtered, dedups[0] if dedups else None),
                tasks,
            )
        ]
        source = self.paths.filtered
        if "exact" in dedups:
            exact_config = DatatroveExactConfig(exact_dedup_key)
            runs.append(
                self._executor(
                    "exact_find",
                    [ExactFindDedups(self.paths.exact_sigs, self.paths.exact_dups, exact_config)],
                    1,
                )
            )
            nxt = "minhash" if "minhash" in dedups else None
            runs.append(
                self._executor(
                    "exact_filter",
                    [
                        RankFileReader(source),
                        ExactDedupFilter(
                            self.paths.exact_dups, exact_config, self._removed_writer("exact_dedup")
                        ),
                        Tally("exact_dedup"),
                        *self._handoff(self.paths.deduped, nxt),
                    ],
                    tasks,
                )
            )
            source = self.paths.deduped
        if "minhash" in dedups:
            config = self._minhash_config()
            runs.append(
                self._executor(
                    "minhash_buckets",
                    [MinhashDedupBuckets(self.paths.minhash_sigs, self.paths.minhash_buckets, config=config)],
                    config.num_buckets,
                )
            )
            runs.append(
                self._executor(
                    "minhash_cluster",
                    [
                        MinhashDedupCluster(
                            self.paths.minhash_buckets, self.paths.minhash_remove, config=config
                        )
                    ],
                    1,
                )
            )
            runs.append(
                self._executor(
                    "minhash_filter",
                    [
                        RankFileReader(source),
                        MinhashDedupFilter(self.paths.minhash_remove, self._removed_writer("minhash_dedup")),
                        Tally("minhash_dedup"),
                        self._corpus_writer(),
                    ],
                    tasks,
                )
            )
        return runs


def classifier_threshold(model_path: str, threshold: float | None) -> float:
    """The configured threshold, else the one train-classifier chose and saved in ``<model>.json``."""
    import json

    if threshold is not None:
        return float(threshold)
    summary = f"{model_path}.json"
    if os.path.isfile(summary):
        with open(summary, encoding="utf-8") as handle:
            return float(json.load(handle)["threshold"])
    return 0.5


def run_pipeline(config: CurationConfig, on_step: Callable[[int, int, str], None] | None = None) -> dict:
    """Run (or resume) every executor, then write the corpus report; returns the report dict."""
    from curation.report import write_report

    executors = PipelineBuilder(config).executors()
    for index, (name, executor) in enumerate(executors, start=1):
        if on_step is not None:
            on_step(index, len(executors), name)
        executor.run()
    return write_report(config)
