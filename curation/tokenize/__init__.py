"""`rexbert tokenize`: a corpus into sharded token files, once, for every phase and run to memory-map.

    rexbert tokenize --tokenizer runs/demo/model --output runs/tokens \\
        --source ecom='runs/demo/curation/ecom/corpus/*.parquet' --source general=general.jsonl.gz --workers 2

Why datatrove rather than `datasets.map(num_proc=...)`: its `DocumentTokenizer` writes exactly the files
training needs (token ids back to back, plus the end of every document), it runs on the executors the
curation already uses (processes here, Slurm job arrays over nodes, Ray), a rerun skips the tasks that
finished, and a task streams its documents in batches where `datasets.map` would first write an Arrow copy
of the whole text. The format and the reader are in `rexbert_core.token_shards` (ground floor), so training
reads the shards without datatrove.

Modules: `config` (`TokenizeConfig`), `steps` (each task's block checksums, the manifest writer), `run`
(step lists, `tokenize_corpus`), `cli` (`rexbert tokenize`).

Per source, one task per input file, run `--workers` at a time: reading the shards in order therefore reads
the documents in the order of the input files, which is the order the in-memory path packs them in. Input is
read by curation's readers, so bad input is handled as curation handles it: a line that is not UTF-8 or not
JSON (a raw NUL byte included), a record without the text column or with a non-string or blank text, a
corrupt or truncated file, each is a counted reject with its file, line and reason in `DIR/rejects/` (the
rest of the file is read), reported by reason in the manifest and on the console; a source left with no
document is an error. Every other document is tokenized with the tokenizer's own special tokens
(`[CLS] text [SEP]`) and without truncation. Each task then records the block checksums of its shard, and a
last one-task step writes `manifest.json` (the tokenizer's fingerprint, every shard's documents, tokens and
checksums, the rejects by reason) once all shards exist, whichever executor ran them.

Output: `DIR/manifest.json`, `DIR/tokenizer.json` (the tokenizer, as the shards were made with it),
`DIR/tokenizer/` (the same tokenizer saved with `save_pretrained`: what `rexbert pretrain --shards DIR`
trains with, so the shards carry everything training needs), `DIR/<source>/NNNNN_unshuffled.ds` (+ `.index`,
`.metadata`, `.checksums.json`), `DIR/rejects/`, `DIR/logs/` (datatrove's logs, stats and completion
markers). The directory is owned like every output (`safe_outputs`): the same command resumes, a changed
tokenizer, source list or text column is refused naming it, `--restart` starts over.
"""

from .config import TokenizeConfig
from .run import build_step_lists, tokenize_corpus
from .steps import RecordShardChecksums, WriteShardsManifest

__all__ = [
    "RecordShardChecksums",
    "TokenizeConfig",
    "WriteShardsManifest",
    "build_step_lists",
    "tokenize_corpus",
]
