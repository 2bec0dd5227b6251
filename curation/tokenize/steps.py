"""The datatrove steps of `rexbert tokenize` besides datatrove's own reader and `DocumentTokenizer`: the reader
adapter that keeps the text alone, the blank-document filter and the manifest writer."""

from __future__ import annotations

import glob
import os

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from curation.report import load_step_stats
from rexbert_core.token_shards import ShardInfo, ShardsManifest, SourceInfo

__all__ = ["DropBlankDocuments", "WriteShardsManifest", "step_list_name", "text_only"]


def text_only(reader, data: dict, path: str, id_in_file: int | str) -> dict:
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
            blank = load_step_stats(logs, [step_list_name(name)]).get(DropBlankDocuments.name, {})
            manifest.sources[name] = SourceInfo(inputs, shards, int(blank.get("dropped_blank", 0)))
        manifest.save(self.output_dir)
        return data


def step_list_name(source: str) -> str:
    return f"tokenize-{source}"
