"""ESCI "token classification": masked-token top-1/3/5 accuracy on product titles and descriptions.

Each product field is tokenized on its own and cut into blocks of at most `max_seq_length` (128)
tokens, [CLS] and [SEP] included. In every block 15% of the content tokens (at least one) are
replaced by [MASK]; positions come from a NumPy generator seeded with `budget.seed`, so every model
sharing a tokenizer is scored on exactly the same masked positions. The model's top-5 token ids
at each masked position go to the `masked_token_accuracy` metric; scores are reported per field
(`title/top1_accuracy`, `description/top3_accuracy`, ...). No 80/10/10 replacement: at evaluation
every selected position is [MASK].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from eval_suites.common import Budget, SuiteResult, require_examples, sample_rows
from eval_suites.data import load_product_texts
from eval_suites.metrics import compute_metric
from eval_suites.models import ModelHeadError, device, load_masked_lm, load_tokenizer
from eval_suites.suite import NoOptions

__all__ = [
    "DATA_KEYS",
    "DEFAULT_BUDGET",
    "EsciTokensSuite",
    "FIELDS",
    "MASK_RATE",
    "MaskedBlocks",
    "SUITE",
    "TOP_K",
    "make_blocks",
    "mask_blocks",
    "rank_masked_tokens",
    "run",
    "score_field",
]

SUITE = "esci-tokens"
DATA_KEYS = ("products", "esci")  # the --data keys that feed this suite, in order of preference
FIELDS = {"title": "product_title", "description": "product_description"}
TOP_K = (1, 3, 5)
DEFAULT_BUDGET = Budget(max_eval_examples=500, batch_size=16, max_seq_length=128)
MASK_RATE = 0.15


@dataclass
class MaskedBlocks:
    """Token blocks with some positions replaced by [MASK]; labels hold the originals (-100 elsewhere)."""

    input_ids: list[list[int]]
    labels: list[list[int]]

    @property
    def n_masked(self) -> int:
        return sum(sum(label != -100 for label in row) for row in self.labels)


def make_blocks(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], block_size: int) -> list[list[int]]:
    """Token ids of each text, cut into [CLS] chunk [SEP] blocks of at most `block_size` tokens."""
    head = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else []
    tail = [tokenizer.sep_token_id] if tokenizer.sep_token_id is not None else []
    chunk = block_size - len(head) - len(tail)
    blocks = []
    for ids in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]:
        blocks.extend(head + ids[start : start + chunk] + tail for start in range(0, len(ids), chunk))
    return blocks


def mask_blocks(
    blocks: list[list[int]], mask_token_id: int, special_ids: set[int], rate: float, seed: int
) -> MaskedBlocks:
    """Replace `rate` of each block's non-special tokens (at least one) by [MASK], reproducibly."""
    rng = np.random.default_rng(seed)
    input_ids, labels = [], []
    for block in blocks:
        candidates = [i for i, token in enumerate(block) if token not in special_ids]
        if not candidates:
            continue
        count = max(1, int(round(rate * len(candidates))))
        chosen = set(rng.choice(candidates, size=count, replace=False).tolist())
        input_ids.append([mask_token_id if i in chosen else t for i, t in enumerate(block)])
        labels.append([t if i in chosen else -100 for i, t in enumerate(block)])
    return MaskedBlocks(input_ids, labels)


@torch.no_grad()
def rank_masked_tokens(
    model: PreTrainedModel, blocks: MaskedBlocks, pad_id: int, batch_size: int, k: int = max(TOP_K)
) -> tuple[list[list[int]], list[int]]:
    """The model's top-k token ids at every masked position, and the original ids, in block order.

    Models that support sparse prediction (ModernBERT / RexBERT `sparse_prediction`) compute the
    vocabulary projection only at masked positions; others return full logits, indexed here.
    """
    if hasattr(model.config, "sparse_prediction"):  # RexBERT reads the config at call time
        model.config.sparse_prediction = True
    if hasattr(model, "sparse_prediction"):  # transformers' ModernBERT copies it at init
        model.sparse_prediction = True
    target = device()
    model.to(target)
    ranked, references = [], []
    for start in range(0, len(blocks.input_ids), batch_size):
        rows = blocks.input_ids[start : start + batch_size]
        label_rows = blocks.labels[start : start + batch_size]
        width = max(map(len, rows))
        ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], device=target)
        labels = torch.tensor([r + [-100] * (width - len(r)) for r in label_rows], device=target)
        attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=target)
        logits = model(input_ids=ids, attention_mask=attention, labels=labels).logits
        masked = labels != -100
        if logits.dim() == 3:
            logits = logits[masked]
        ranked.extend(logits.float().topk(k, dim=-1).indices.tolist())
        references.extend(labels[masked].tolist())
    return ranked, references


def score_field(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], budget: Budget
) -> tuple[dict[str, float], dict[str, list], int]:
    """Top-k accuracies for one field's texts, the raw predictions, and the number of masked tokens."""
    blocks = make_blocks(tokenizer, texts, budget.max_seq_length)
    masked = mask_blocks(
        blocks, tokenizer.mask_token_id, set(tokenizer.all_special_ids), MASK_RATE, budget.seed
    )
    require_examples(SUITE, "evaluation", masked.n_masked)
    ranked, references = rank_masked_tokens(model, masked, tokenizer.pad_token_id or 0, budget.batch_size)
    metrics = compute_metric("masked_token_accuracy", ranked, references, top_k=list(TOP_K))
    return metrics, {"predictions": ranked, "references": references}, masked.n_masked


def run(model_path: str, data: Sequence[str], budget: Budget = DEFAULT_BUDGET) -> SuiteResult:
    """Score a masked-LM checkpoint on product titles and descriptions from `data` files."""
    tokenizer = load_tokenizer(model_path)
    if tokenizer.mask_token_id is None:
        raise ModelHeadError(f"{model_path}: the tokenizer has no mask token; esci-tokens needs one")
    model = load_masked_lm(model_path)
    products = sample_rows(load_product_texts(data), budget.max_eval_examples, budget.seed)
    metrics, predictions, counts = {}, {}, {}
    for field_name, column in FIELDS.items():
        texts = [t for t in products[column] if t]
        if not texts:
            continue
        field_metrics, predictions[field_name], counts[field_name] = score_field(
            model, tokenizer, texts, budget
        )
        metrics.update({f"{field_name}/{name}": value for name, value in field_metrics.items()})
    return SuiteResult(
        task_type="fill-mask",
        dataset={"name": "ESCI products (masked tokens)", "type": "esci", "split": "products"},
        metrics=metrics,
        main_metric="title/top1_accuracy",
        n_examples=sum(counts.values()),
        config={
            "data": list(map(str, data)),
            "products": len(products),
            "masked_tokens": counts,
            "mask_rate": MASK_RATE,
            "block_size": budget.max_seq_length,
            "seed": budget.seed,
            "top_k": list(TOP_K),
        },
        predictions=predictions,
    )


class EsciTokensSuite:
    """This module as a `Suite` (see `eval_suites.suite`)."""

    name, data_keys, default_budget, options = SUITE, DATA_KEYS, DEFAULT_BUDGET, NoOptions

    def run(self, model_path: str, data: Sequence[str], budget: Budget, options: NoOptions) -> SuiteResult:
        return run(model_path, data, budget)
