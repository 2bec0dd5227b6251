"""`rexbert tokenize`: a corpus into sharded token files, once, for every phase and run to memory-map.

    rexbert tokenize --tokenizer runs/demo/model --output runs/tokens \\
        --source ecom='runs/demo/curation/ecom/corpus/*.parquet' --source general=general.jsonl.gz --workers 2

Why datatrove rather than `datasets.map(num_proc=...)`: its `DocumentTokenizer` writes exactly the files
training needs (token ids back to back, plus the end of every document), it runs on the executors the
curation already uses (processes here, Slurm job arrays over nodes, Ray), a rerun skips the tasks that
finished, and a task streams its documents in batches where `datasets.map` would first write an Arrow copy
of the whole text. The format and the reader are in `token_shards` (ground floor), so training reads the
shards without datatrove.

Per source, one task per input file, run `--workers` at a time: reading the shards in order therefore reads
the documents in the order of the input files, which is the order the in-memory path packs them in. Texts
that are missing, not strings or blank are dropped and counted (the in-memory path skips them the same
way); every other document is tokenized with the tokenizer's own special tokens (`[CLS] text [SEP]`) and
without truncation. A last one-task step writes `manifest.json` (the tokenizer's fingerprint, every shard's
documents and tokens, the blank count) once all shards exist, whichever executor ran them.

Output: `DIR/manifest.json`, `DIR/tokenizer.json` (the tokenizer, as the shards were made with it),
`DIR/tokenizer/` (the same tokenizer saved with `save_pretrained`: what `rexbert pretrain --shards DIR` trains
with, so the shards carry everything training needs),
`DIR/<source>/NNNNN_unshuffled.ds` (+ `.index`, `.metadata`), `DIR/logs/` (datatrove's logs, stats and
completion markers). The directory is owned like every output (`safe_outputs`): the same command resumes,
a changed tokenizer, source list or text column is refused naming it, `--restart` starts over.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
from dataclasses import dataclass, field

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curation.config import ExecutorConfig
from curation.executors import run_step_lists
from curation.pipeline import StepList
from curation.report import load_step_stats
from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory
from rexbert_core.token_shards import (
    ShardInfo,
    ShardsManifest,
    SourceInfo,
    tokenizer_fingerprint,
    tokenizer_json,
)
from rexbert_core.typed_config import ConfigError, DataError, UsageError, from_mapping

__all__ = [
    "DropBlankDocuments",
    "TokenizeConfig",
    "WriteShardsManifest",
    "add_arguments",
    "main",
    "tokenize_corpus",
]

logger = logging.getLogger("rexbert.tokenize")

OUTPUT_ENTRIES = ("manifest.json", "tokenizer.json", "tokenizer", "logs")
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
        suffixes = {_suffix(path) for path in found}
        if len(suffixes) != 1 or next(iter(suffixes)) not in READERS:
            raise DataError(
                f"--source {name}: files must all be parquet or all json(l) (optionally .gz), got {sorted(suffixes)}"
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


def _suffix(path: str) -> str:
    parts = [part for part in os.path.basename(path).split(".")[1:] if part != "gz"]
    return "." + parts[-1] if parts else ""


def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    import modeling_rexbert  # noqa: F401  (registers "rexbert": a RexBERT model folder's tokenizer loads without asking)

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise DataError(f"--tokenizer {path}: not a tokenizer directory or Hub id ({error})") from None


def _text_only(reader, data: dict, path: str, id_in_file: int | str) -> dict:
    """datatrove reader adapter: the text column alone (no other columns carried along). A missing, empty or
    non-string text becomes a blank, which `DropBlankDocuments` counts (datatrove's reader would skip an empty
    one uncounted)."""
    text = data.get(reader.text_key)
    return {"text": text if isinstance(text, str) and text else " ", "id": f"{path}/{id_in_file}"}


class DropBlankDocuments(PipelineStep):
    """Drops documents whose text is missing, not a string or blank, counted as ``dropped_blank``."""

    name = "tokenize:drop_blank"
    type = "🔻 - FILTER"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for document in data:
            self.stat_update("total")
            if isinstance(document.text, str) and document.text.strip():
                self.stat_update("forwarded")
                yield document
            else:
                self.stat_update("dropped_blank")


class WriteShardsManifest(PipelineStep):
    """The last step: `manifest.json` from the shards on disk and the blank counts in the stats."""

    name = "tokenize:manifest"
    type = "💾 - WRITER"

    def __init__(self, *, output_dir: str, sources: dict[str, list[str]], fingerprint: str, vocab_size: int):
        super().__init__()
        self.output_dir, self.sources = output_dir, sources
        self.fingerprint, self.vocab_size = fingerprint, vocab_size

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        token_size = 4 if self.vocab_size > 65536 else 2  # datatrove's rule for its token files
        manifest = ShardsManifest(self.fingerprint, self.vocab_size, token_size)
        logs = os.path.join(self.output_dir, "logs")
        for name, inputs in self.sources.items():
            shards = []
            for path in sorted(glob.glob(os.path.join(self.output_dir, name, "*.ds"))):
                tokens = os.path.getsize(path) // token_size
                documents = os.path.getsize(path + ".index") // 8 if tokens else 0
                shards.append(ShardInfo(os.path.relpath(path, self.output_dir), documents, tokens))
            blank = load_step_stats(logs, [_step_list_name(name)]).get(DropBlankDocuments.name, {})
            manifest.sources[name] = SourceInfo(inputs, shards, int(blank.get("dropped_blank", 0)))
        manifest.save(self.output_dir)
        return data


def _step_list_name(source: str) -> str:
    return f"tokenize-{source}"


def _file_reader(config: TokenizeConfig, name: str) -> tuple[PipelineStep, int, list[str]]:
    """(reader, tasks, inputs) of a source of files: a task per file, in the order given."""
    from datatrove.pipeline import readers

    files = config.files(name)
    folder = os.path.commonpath([os.path.dirname(path) for path in files])
    paths_file = os.path.join(config.output_dir, "logs", f"{name}.paths")
    os.makedirs(os.path.dirname(paths_file), exist_ok=True)
    with open(paths_file, "w", encoding="utf-8") as handle:
        handle.write("".join(os.path.relpath(path, folder) + "\n" for path in files))
    progress = sys.stderr.isatty()  # datatrove's per-task bars; in a log file they are noise
    reader = getattr(readers, READERS[_suffix(files[0])])(
        folder,
        paths_file=paths_file,
        text_key=config.text_column,
        adapter=_text_only,
        file_progress=progress,
        doc_progress=progress,
    )
    return reader, len(files), files


def _dataset_reader(config: TokenizeConfig, name: str) -> tuple[PipelineStep, int, list[str]]:
    """(reader, tasks, inputs) of a `datasets` source, streamed (nothing is downloaded whole first)."""
    from datatrove.pipeline.readers import HuggingFaceDatasetReader

    dataset, _, subset = config.datasets[name].partition(":")
    options = {"split": config.split, **({"name": subset} if subset else {})}
    reader = HuggingFaceDatasetReader(
        dataset, dataset_options=options, streaming=True, text_key=config.text_column, adapter=_text_only
    )
    return reader, config.dataset_tasks, [config.datasets[name]]


def build_step_lists(
    config: TokenizeConfig, tokenizer_file: str, vocab_size: int, fingerprint: str
) -> list[StepList]:
    """One step list per source (a task per input file), then the one-task manifest writer."""
    from datatrove.pipeline.tokens import DocumentTokenizer

    step_lists, inputs = [], {}
    for name in config.names:
        reader, tasks, inputs[name] = (_file_reader if name in config.sources else _dataset_reader)(
            config, name
        )
        tokenizer = DocumentTokenizer(
            os.path.join(config.output_dir, name),
            tokenizer_name_or_path=tokenizer_file,
            shuffle_documents=False,
            batch_size=1000,
        )
        step_lists.append(StepList(_step_list_name(name), [reader, DropBlankDocuments(), tokenizer], tasks))
    manifest = WriteShardsManifest(
        output_dir=config.output_dir, sources=inputs, fingerprint=fingerprint, vocab_size=vocab_size
    )
    step_lists.append(StepList("manifest", [manifest], 1, always_rerun=True))
    return step_lists


def tokenize_corpus(config: TokenizeConfig, *, restart: bool = False) -> ShardsManifest | None:
    """Tokenize (or finish tokenizing) every source; the manifest, or None when Slurm jobs were only
    submitted (their last job writes it)."""
    if not config.names:
        raise ConfigError("give at least one --source NAME=FILES or --dataset NAME=ID")
    doubled = sorted(set(config.sources) & set(config.datasets))
    if doubled:
        raise ConfigError(f"source {doubled[0]!r} is given both as files and as a dataset")
    reserved = sorted(set(config.names) & set(OUTPUT_ENTRIES))
    if reserved:
        raise ConfigError(f"--source {reserved[0]}: that name is taken by the output's own {reserved[0]!r}")
    tokenizer = _load_tokenizer(config.tokenizer)
    os.makedirs(config.output_dir, exist_ok=True)
    with DirectoryLock(config.output_dir):
        tokenizer_id = tokenizer_fingerprint(tokenizer)
        owned = OwnedDirectory.claim(
            config.output_dir, "tokenize", config.record(tokenizer_id), restart=restart
        )
        owned.created(*OUTPUT_ENTRIES, *config.names)
        tokenizer_file = os.path.join(config.output_dir, "tokenizer.json")
        with open(tokenizer_file, "w", encoding="utf-8") as handle:
            handle.write(tokenizer_json(tokenizer))
        tokenizer.save_pretrained(os.path.join(config.output_dir, "tokenizer"))
        vocab_size = tokenizer.backend_tokenizer.get_vocab_size()
        step_lists = build_step_lists(config, tokenizer_file, vocab_size, tokenizer_id)
        logs = os.path.join(config.output_dir, "logs")

        def on_step(index: int, total: int, name: str) -> None:
            logger.info("tokenize %d/%d: %s", index, total, name)

        if not run_step_lists(step_lists, logs, config.executor, config.workers, on_step=on_step):
            return None
    return ShardsManifest.load(config.output_dir)


def _source(value: str) -> tuple[str, str]:
    name, separator, files = value.partition("=")
    if not separator or not name or not files:
        raise argparse.ArgumentTypeError(f"expected NAME=FILES, got {value!r}")
    return name, files


def _executor(value: str) -> ExecutorConfig:
    import yaml

    try:
        mapping = yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"not a YAML mapping: {error}") from None
    try:
        return from_mapping(ExecutorConfig, mapping, "--executor")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Tokenize a corpus once into memory-mappable token shards (see curation.tokenize)."
    parser.add_argument("--tokenizer", required=True, help="tokenizer directory (a saved model) or Hub id")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument(
        "--source",
        action="append",
        type=_source,
        default=[],
        metavar="NAME=FILES",
        help="a source and its parquet or jsonl(.gz) files (a glob; repeat the option for more sources)",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        type=_source,
        default=[],
        metavar="NAME=ID[:CONFIG]",
        help="a source read with `datasets` (streaming): a Hub id or a local dataset folder",
    )
    parser.add_argument(
        "--dataset-tasks", type=int, default=1, help="tasks per --dataset source (more than 1: not in order)"
    )
    parser.add_argument("--split", default="train", help="split of the --dataset sources")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--workers", type=int, default=1, help="tasks run in parallel (one task per file)")
    parser.add_argument(
        "--executor",
        type=_executor,
        default=ExecutorConfig(),
        metavar="MAPPING",
        help="datatrove executor as a YAML mapping, as in curation configs, e.g. "
        "\"{kind: slurm, options: {partition: cpu, time: '2:00:00'}}\" (default: local)",
    )
    parser.add_argument("--restart", action="store_true", help="delete what an earlier tokenize wrote first")


def main(args: argparse.Namespace) -> int:
    sources: dict[str, list[str]] = {}
    for name, files in args.source:
        sources.setdefault(name, []).append(files)
    if args.workers < 1 or args.dataset_tasks < 1:
        raise UsageError("--workers and --dataset-tasks must be at least 1")
    config = TokenizeConfig(
        output_dir=os.path.abspath(args.output),
        tokenizer=args.tokenizer,
        sources=sources,
        text_column=args.text_column,
        workers=args.workers,
        datasets=dict(args.dataset),
        dataset_tasks=args.dataset_tasks,
        split=args.split,
        executor=args.executor,
    )
    manifest = tokenize_corpus(config, restart=args.restart)
    if manifest is None:
        print(
            f"submitted the {config.executor.kind} jobs; the last one writes {config.output_dir}/manifest.json"
        )
        return 0
    for name, source in manifest.sources.items():
        print(
            f"{name}: {source.documents} documents, {source.tokens} tokens in {len(source.shards)} shards"
            f" ({source.blank_documents} blank dropped)"
        )
    print(os.path.join(config.output_dir, "manifest.json"))
    return 0
