"""Held-out validation during pretraining.

`split_documents` sets `documents_per_source` documents of every source aside before anything is packed
(a seeded draw, the same in every phase), so no phase ever trains on them; `validation_batches` packs them
at the phase's sequence length and masks them once, uniformly at the phase's starting rate with a fixed
seed, so every evaluation of a phase scores exactly the same tokens. `RexBertTrainer.evaluate` reports
the MLM loss and masked-token accuracy per source.
"""

from __future__ import annotations

import numpy as np
import torch

from .collator import GuidedMLMCollator
from .packing import PackedRows
from .row_order import RowOrder

__all__ = ["held_out_indices", "split_documents", "validation_batches"]


def held_out_indices(count: int, total: int, seed: int) -> np.ndarray:
    """The sorted indices of the `count` documents (of `total`) set aside for validation."""
    if total <= count:
        raise ValueError(f"cannot set {count} of {total} documents aside for validation")
    return np.sort(RowOrder(total, seed).take(0, count))  # the first `count` of a seeded bijection


def split_documents(dataset, count: int, seed: int):
    """(training, validation) subsets of a map-style `datasets.Dataset`, both in their original order."""
    held_out = held_out_indices(count, len(dataset), seed)
    keep = np.ones(len(dataset), dtype=bool)
    keep[held_out] = False
    return dataset.select(np.flatnonzero(keep).tolist()), dataset.select(held_out.tolist())


def validation_batches(
    sources: dict[str, PackedRows],
    source_names: list[str],
    tokenizer,
    *,
    mask_rate: float,
    batch_size: int,
    seed: int,
) -> list[dict[str, torch.Tensor]]:
    """Every validation row of every source, collated into masked batches (row `source` = its index in
    `source_names`, as in training)."""
    collator = GuidedMLMCollator(tokenizer)
    rows = [
        {**row, "source": source_names.index(name)}
        for name, packed in sources.items()
        for row in packed.iter_epoch(0, seed)
    ]
    generator = torch.Generator().manual_seed(seed)
    return [
        collator(rows[i : i + batch_size], mask_rate=mask_rate, generator=generator)
        for i in range(0, len(rows), batch_size)
    ]
