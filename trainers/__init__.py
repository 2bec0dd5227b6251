"""RexBERT pretraining on the transformers `Trainer`.

Modules, in the order data flows through them:

    packing     tokenise documents and pack them into rows (position ids restart per document)
    token_rows  rows cut straight from memory-mapped token shards (`rexbert tokenize`)
    row_order   `RowOrder`: each epoch's shuffled row order as a seeded bijection, in constant memory
    saliency    the domain-saliency lexicon behind Guided MLM (`build_saliency_lexicon`)
    collator    `GuidedMLMCollator`: 80/10/10 MLM steered toward salient tokens at a fixed rate
    schedules   learning-rate (WSD, 1-sqrt), masking-rate and batch-size schedules
    cursors     `SourceCursor`: one source read row by row across epochs, resumable at any row count
    mixture     `MixtureSchedule` and the resumable, seeded `MixtureStream` of batches
    stream_checkpoint  the stream's state in every checkpoint, and `MixtureStateCallback` saving it
    checkpoints checksummed checkpoints, damaged or incomplete ones set aside, model folders linked
    divergence  `DivergenceGuard`: a non-finite loss, gradient or weight stops the run before it is saved
    elastic     resuming on another process count with the same global batch and data order
    trainer     `RexBertTrainer(Trainer)` with the narrow hooks curriculum MLM needs
    recipes     strictly validated YAML phase recipes (`trainers/recipes/*.yaml`)
    sources     datasets, tokenizer and lexicon from a recipe
    pretrain    runs the phases, writes logs, plot and training_summary.json
    cli         the `rexbert pretrain` command

The main names are importable from the package (lazily, so `import trainers` stays cheap). Like every
library here it imports no sibling package: only the model (`modeling_rexbert`) and the ground floor
(`rexbert_core`: typed configs, safe outputs, token shards, and the sample corpus for the demo recipes'
`sample_corpus:` sources).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "GuidedMLMCollator": "collator",
    "SaliencyLexicon": "saliency",
    "build_saliency_lexicon": "saliency",
    "PackedRows": "packing",
    "StreamingPackedSource": "packing",
    "MixtureSchedule": "mixture",
    "MixtureStream": "mixture",
    "RexBertTrainer": "trainer",
    "Recipe": "recipes",
    "load_recipe": "recipes",
    "pretrain": "pretrain",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trainers' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
