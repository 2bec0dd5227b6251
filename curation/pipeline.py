"""The curation pipeline as plain datatrove step lists, and running them.

Stages, in order (each optional): read + validate -> the per-document stages of `StagesConfig` (domain
pre-selection -> quality -> e-commerce classifier -> language -> PII scrubbing, each built by its own
settings) -> exact dedup -> MinHash near-dup removal -> corpus shards -> a corpus-wide id check -> report.

`PipelineBuilder(config).step_lists()` returns what datatrove runs, one `StepList` per executor: the
per-document filters run over `tasks` shards; deduplication needs every shard's signatures, so it runs as
datatrove's multi-step exact and MinHash dedups on the intermediate shards under `work/`; a last one-task
list writes the corpus report. `curation.executors` hands the lists to the executor the config names
(local, slurm or ray) and `curation.run.run_pipeline` does both; every executor logs to `logs/<step list>`
and marks each finished task there, so a rerun skips finished tasks.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.dedup import (
    ExactDedupSignature,
    ExactFindDedups,
    MinhashDedupBuckets,
    MinhashDedupCluster,
)
from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig as DatatroveExactConfig
from datatrove.pipeline.dedup.minhash import MinhashConfig as DatatroveMinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

from curation.config import CurationConfig
from curation.layout import CorpusLayout
from curation.readers import build_reader
from curation.report import WriteCorpusReport
from curation.steps import (
    CountedExactDedupFilter,
    CountedMinhashDedupFilter,
    StepContext,
    WhitespaceMinhashSignature,
    document_id_key,
    exact_dedup_key,
)
from curation.text import TokenCounter

__all__ = ["CORPUS_COLUMNS", "PipelineBuilder", "StepList", "corpus_schema"]

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


def corpus_row(self, document) -> dict:
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
class StepList:
    """What one executor runs: `tasks` parallel tasks, each through `steps` in order. `always_rerun`: run
    again on every call instead of skipping finished tasks (the report, rebuilt from the saved stats)."""

    name: str
    steps: list
    tasks: int
    always_rerun: bool = False


class PipelineBuilder:
    """Turns a `CurationConfig` into the ordered `StepList`s of a run."""

    def __init__(self, config: CurationConfig):
        self.config = config
        self.layout = CorpusLayout(config.output_dir)
        self.tokens = TokenCounter(config.token_counter)

    def _removed_writer(self, stage: str):
        if not self.config.output.write_removed:
            return None
        return JsonlWriter(self.layout.removed_stage(stage), output_filename="${rank}.jsonl.gz")

    def _corpus_steps(self) -> list:
        """The corpus writer, then the signature of each written document's id (`id_check`)."""
        out = self.config.output
        if out.format == "jsonl":
            writer = JsonlWriter(self.layout.corpus, output_filename="${rank}.jsonl.gz", adapter=corpus_row)
        else:
            writer = ParquetWriter(
                self.layout.corpus,
                output_filename="${rank}.parquet",
                adapter=corpus_row,
                schema=corpus_schema(),
                max_file_size=out.max_file_size_mb * 2**20,
            )
        return [writer, ExactDedupSignature(self.layout.id_sigs, DatatroveExactConfig(document_id_key))]

    def filter_steps(self) -> list:
        """Readers, then the steps of every enabled per-document stage, in `StagesConfig` order."""
        c = self.config
        progress = c.progress and sys.stderr.isatty()  # in a log file a progress bar is noise
        steps: list = [
            build_reader(
                source=s,
                limits=c.limits,
                rejects_folder=self.layout.rejects,
                token_counter=self.tokens,
                progress=progress,
            )
            for s in c.sources
        ]
        context = StepContext(token_counter=self.tokens, removed_writer=self._removed_writer)
        for stage in c.stages.filters():
            if stage.enabled:
                steps.extend(stage.steps(context))
        return steps

    def _minhash_config(self) -> DatatroveMinhashConfig:
        m = self.config.stages.minhash_dedup
        return DatatroveMinhashConfig(
            n_grams=m.n_grams, num_buckets=m.num_buckets, hashes_per_bucket=m.hashes_per_bucket, seed=m.seed
        )

    def _handoff(self, folder: str, next_dedup: str | None) -> list:
        """End of a step list: the corpus, or an intermediate shard plus the next dedup's signatures."""
        if next_dedup is None:
            return self._corpus_steps()
        steps: list = [JsonlWriter(folder, output_filename="${rank}.jsonl.gz")]
        if next_dedup == "exact":
            steps.append(ExactDedupSignature(self.layout.exact_sigs, DatatroveExactConfig(exact_dedup_key)))
        else:
            steps.append(WhitespaceMinhashSignature(self.layout.minhash_sigs, self._minhash_config()))
        return steps

    def step_lists(self) -> list[StepList]:
        """Every step list of the run, in the order they must run."""
        stages, tasks, layout = self.config.stages, self.config.tasks, self.layout
        dedups = [
            d
            for d, on in (("exact", stages.exact_dedup.enabled), ("minhash", stages.minhash_dedup.enabled))
            if on
        ]
        lists = [
            StepList(
                "filter",
                self.filter_steps() + self._handoff(layout.filtered, dedups[0] if dedups else None),
                tasks,
            )
        ]
        source = layout.filtered
        if "exact" in dedups:
            exact = DatatroveExactConfig(exact_dedup_key)
            lists.append(
                StepList("exact_find", [ExactFindDedups(layout.exact_sigs, layout.exact_dups, exact)], 1)
            )
            dedup = CountedExactDedupFilter(
                data_folder=layout.exact_dups,
                config=exact,
                exclusion_writer=self._removed_writer("exact_dedup"),
            )
            following = self._handoff(layout.deduped, "minhash" if "minhash" in dedups else None)
            lists.append(StepList("exact_filter", [RankFileReader(source), dedup, *following], tasks))
            source = layout.deduped
        if "minhash" in dedups:
            config = self._minhash_config()
            buckets = MinhashDedupBuckets(layout.minhash_sigs, layout.minhash_buckets, config=config)
            lists.append(StepList("minhash_buckets", [buckets], config.num_buckets))
            cluster = MinhashDedupCluster(layout.minhash_buckets, layout.minhash_remove, config=config)
            lists.append(StepList("minhash_cluster", [cluster], 1))
            dedup = CountedMinhashDedupFilter(
                input_folder=layout.minhash_remove, exclusion_writer=self._removed_writer("minhash_dedup")
            )
            lists.append(
                StepList("minhash_filter", [RankFileReader(source), dedup, *self._corpus_steps()], tasks)
            )
        # ids two tasks both kept (a task rejects its own repeats at read): counted in the report
        id_check = ExactFindDedups(layout.id_sigs, layout.id_dups, DatatroveExactConfig(document_id_key))
        lists.append(StepList("id_check", [id_check], 1))
        report = WriteCorpusReport(config=self.config, step_lists=[s.name for s in lists])
        lists.append(StepList("report", [report], 1, always_rerun=True))
        return lists
