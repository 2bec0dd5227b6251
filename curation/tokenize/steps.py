"""The datatrove steps of `rexbert tokenize` besides the readers (curation's, with their rejects) and
datatrove's `DocumentTokenizer`: each task's block checksums, and the manifest writer."""

from __future__ import annotations

import glob
import json
import os

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curation.report import load_step_stats
from rexbert_core.safe_outputs import BLOCK_SIZE, atomic_write_json, block_digests
from rexbert_core.token_shards import ShardInfo, ShardsManifest, SourceInfo

__all__ = ["RecordShardChecksums", "WriteShardsManifest", "reader_step_name", "step_list_name"]

CHECKSUMS_SUFFIX = ".checksums.json"


def step_list_name(source: str) -> str:
    return f"tokenize-{source}"


def reader_step_name(source: str) -> str:
    """The stats name of a source's reader (curation's readers are named so)."""
    return f"curation:read:{source}"


def shard_checksums(path: str) -> dict:
    """Block digests of a shard's token file and index (`ShardInfo.checksums`)."""
    return {
        "block_size": BLOCK_SIZE,
        "tokens": block_digests(path, BLOCK_SIZE),
        "index": block_digests(path + ".index", BLOCK_SIZE),
    }


class RecordShardChecksums(PipelineStep):
    """After `DocumentTokenizer` (whose `run` returns once its files are closed): the block digests of the
    shard this task wrote, as `<shard>.checksums.json`, hashed by the tasks in parallel and gathered by
    `WriteShardsManifest`."""

    name = "tokenize:checksums"
    type = "💾 - WRITER"

    def __init__(self, *, folder: str):
        super().__init__()
        self.folder = folder

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for _ in data or ():
            pass
        for path in sorted(glob.glob(os.path.join(self.folder, f"{rank:05d}_*.ds"))):
            atomic_write_json(path + CHECKSUMS_SUFFIX, shard_checksums(path))
            self.stat_update("shards")
        return None


class WriteShardsManifest(PipelineStep):
    """The last step: `manifest.json` from the shards on disk, their checksums, and what each source's reader
    rejected (the reasons and counts of curation's readers; `blank_documents` is the empty texts)."""

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
            shards = [
                self._shard(path, token_size)
                for path in sorted(glob.glob(os.path.join(self.output_dir, name, "*.ds")))
            ]
            stats = load_step_stats(logs, [step_list_name(name)]).get(reader_step_name(name), {})
            rejected = {
                k.removeprefix("rejected_"): int(v) for k, v in stats.items() if k.startswith("rejected_")
            }
            manifest.sources[name] = SourceInfo(inputs, shards, rejected.get("empty_text", 0), rejected)
        manifest.save(self.output_dir)
        return data

    def _shard(self, path: str, token_size: int) -> ShardInfo:
        tokens = os.path.getsize(path) // token_size
        documents = os.path.getsize(path + ".index") // 8 if tokens else 0
        sidecar = path + CHECKSUMS_SUFFIX
        if os.path.isfile(sidecar):
            with open(sidecar, encoding="utf-8") as handle:
                checksums = json.load(handle)
        else:  # a task of an earlier version: hashed here
            checksums = shard_checksums(path)
        return ShardInfo(os.path.relpath(path, self.output_dir), documents, tokens, checksums)
