"""Tokenizing a corpus: the step lists (one per source, a task per input file, then the manifest) on the
configured executor, in an output directory the command owns."""

from __future__ import annotations

import logging
import os
import sys

from datatrove.pipeline.base import PipelineStep

from curation.config import InputLimits, SourceConfig
from curation.executors import run_step_lists
from curation.pipeline import StepList
from curation.readers import build_reader
from curation.text import TokenCounter
from rexbert_core.safe_outputs import DirectoryLock, OwnedDirectory, atomic_write_text
from rexbert_core.token_shards import ShardsManifest, tokenizer_fingerprint, tokenizer_json
from rexbert_core.typed_config import ConfigError, DataError

from .config import TokenizeConfig, file_suffix
from .steps import RecordShardChecksums, WriteShardsManifest, step_list_name

__all__ = ["OUTPUT_ENTRIES", "build_step_lists", "tokenize_corpus"]

logger = logging.getLogger("rexbert.tokenize")

REJECTS = "rejects"
OUTPUT_ENTRIES = ("manifest.json", "tokenizer.json", "tokenizer", "logs", REJECTS)


def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    import modeling_rexbert  # noqa: F401  (registers "rexbert": a RexBERT model folder's tokenizer loads without asking)

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise DataError(f"--tokenizer {path}: not a tokenizer directory or Hub id ({error})") from None


def _reader_settings(config: TokenizeConfig) -> dict:
    """What every source's reader is built with: the run's rejects folder, no length limit (tokenizing keeps
    every non-empty text, as pretraining from text does), generated ids (ids play no part in shards)."""
    return dict(
        limits=InputLimits(min_chars=1, max_chars=sys.maxsize),
        rejects_folder=os.path.join(config.output_dir, REJECTS),
        token_counter=TokenCounter("words"),
        progress=sys.stderr.isatty(),  # datatrove's per-task bars; in a log file they are noise
        ids=False,
    )


def _file_reader(config: TokenizeConfig, name: str) -> tuple[PipelineStep, int, list[str]]:
    """(reader, tasks, inputs) of a source of files: a task per file, in the order given."""
    files = config.files(name)
    folder = os.path.commonpath([os.path.dirname(path) for path in files])
    paths_file = os.path.join(config.output_dir, "logs", f"{name}.paths")
    os.makedirs(os.path.dirname(paths_file), exist_ok=True)
    atomic_write_text(paths_file, "".join(os.path.relpath(path, folder) + "\n" for path in files))
    kind = "parquet" if file_suffix(files[0]) == ".parquet" else "jsonl"
    source = SourceConfig(name=name, path=folder, format=kind, text_key=config.text_column)
    reader = build_reader(source=source, paths_file=paths_file, **_reader_settings(config))
    return reader, len(files), files


def _dataset_reader(config: TokenizeConfig, name: str) -> tuple[PipelineStep, int, list[str]]:
    """(reader, tasks, inputs) of a `datasets` source, streamed (nothing is downloaded whole first)."""
    dataset, _, subset = config.datasets[name].partition(":")
    options = {"split": config.split, **({"name": subset} if subset else {})}
    source = SourceConfig(
        name=name, format="datasets", dataset=dataset, dataset_options=options, text_key=config.text_column
    )
    reader = build_reader(source=source, streaming=True, **_reader_settings(config))
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
        checksums = RecordShardChecksums(folder=os.path.join(config.output_dir, name))
        step_lists.append(StepList(step_list_name(name), [reader, tokenizer, checksums], tasks))
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
    with DirectoryLock(config.output_dir) as lock:
        tokenizer_id = tokenizer_fingerprint(tokenizer)
        owned = OwnedDirectory.claim(
            config.output_dir, "tokenize", config.record(tokenizer_id), restart=restart
        )
        owned.created(*OUTPUT_ENTRIES, *config.names)
        tokenizer_file = os.path.join(config.output_dir, "tokenizer.json")
        atomic_write_text(tokenizer_file, tokenizer_json(tokenizer))
        tokenizer.save_pretrained(os.path.join(config.output_dir, "tokenizer"))
        vocab_size = tokenizer.backend_tokenizer.get_vocab_size()
        step_lists = build_step_lists(config, tokenizer_file, vocab_size, tokenizer_id)
        logs = os.path.join(config.output_dir, "logs")

        def on_step(index: int, total: int, name: str) -> None:
            logger.info("tokenize %d/%d: %s", index, total, name)

        outcome = run_step_lists(step_lists, logs, config.executor, config.workers, on_step=on_step)
        if not outcome:
            lock.hold_for_slurm_jobs(outcome.slurm_jobs)  # the jobs hold the directory until they end
            return None
    manifest = ShardsManifest.load(config.output_dir)
    for name, source in manifest.sources.items():
        if source.rejected:
            counts = ", ".join(f"{count} {reason}" for reason, count in sorted(source.rejected.items()))
            logger.warning(
                "%s: rejected %s (file and line of each in %s)",
                name,
                counts,
                os.path.join(config.output_dir, REJECTS),
            )
        if source.documents == 0:
            rejected = f" (rejected: {counts})" if source.rejected else ""
            raise DataError(f"source {name!r}: no document to tokenize in {source.inputs}{rejected}")
    return manifest
