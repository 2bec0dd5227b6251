# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""The masked-LM decoder, and the decoder fused with its cross-entropy loss.

`decode(features, weight, bias, batch)` computes `features @ weight.T + bias` straight into its final place:
one row per feature, or, given a `PackedBatch`, the zero-padded `(batch * seq_len, vocab)` grid (each run of
real tokens written where it belongs, instead of computed packed and then scattered: at 50k vocabulary
entries per row the scatter costs about as much as the matmul on CPU).

`decode_with_loss(...)` also returns the cross-entropy of the labelled rows, with the maths of
`F.linear` + `F.cross_entropy` (mean, or sum / `num_items_in_batch` as transformers' `ForMaskedLMLoss`), but
without their `(rows, vocab)` temporaries:

- forward: the loss reads the labelled logits back a few rows at a time (log-softmax in cache) instead of
  writing a log-probability tensor as large as the logits;
- backward: d loss / d logits = (softmax - one-hot) / n is never stored. The softmax is rebuilt from the
  saved logits one vocabulary block at a time (a few MB, cache resident) and fed straight into the weight and
  feature matmuls; the one-hot part is a gather / scatter of `(labelled, hidden)` values.

With a 50k vocabulary these temporaries are most of the head's cost besides the matmuls on CPU: each is a
full pass of memory traffic plus page faults on a fresh allocation (`bench/bench_model.py`).

Under autocast the decoder runs in the autocast dtype, as the `F.linear` it replaces would: its inputs are
cast on the way in (casts autograd sees, so float32 master weights get their gradients); the loss is
computed in float32 either way.
"""

from __future__ import annotations

import torch

from .unpadding import PackedBatch

__all__ = ["decode", "decode_with_loss"]

# Bytes of logits handled per step: cache-sized on CPU, large on accelerators (where launches cost more).
_CPU_BLOCK_BYTES = 8 << 20
_ACCELERATOR_BLOCK_BYTES = 512 << 20


def decode(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, batch: PackedBatch | None = None
) -> torch.Tensor:
    """`(rows, vocab)` logits, or with `batch` the `(batch * seq_len, vocab)` grid with zeros at padding."""
    return _Decode.apply(*_as_autocast(features, weight, bias), _grid_of(batch))


def decode_with_loss(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    batch: PackedBatch | None = None,
    feature_rows: torch.Tensor | None = None,
    logit_rows: torch.Tensor | None = None,
    num_items_in_batch: torch.Tensor | int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits as `decode`, and the cross-entropy of the labelled rows against `targets`.

    feature_rows / logit_rows: the labelled rows, as indices into `features` and into the logits (None: every
    row, in order). The loss is the mean over labelled rows, or their sum divided by `num_items_in_batch`.
    """
    vocab_size = weight.shape[0]
    if targets.numel() == 0:
        raise ValueError("decode_with_loss needs at least one labelled token")
    if bool((targets < 0).any()) or bool((targets >= vocab_size).any()):
        raise ValueError(
            f"labels must be -100 or token ids in [0, vocab_size={vocab_size}), "
            f"got [{int(targets.min())}, {int(targets.max())}]"
        )
    normaliser = targets.numel() if num_items_in_batch is None else num_items_in_batch
    normaliser = float(normaliser.item() if torch.is_tensor(normaliser) else normaliser)
    return _DecodeWithLoss.apply(
        *_as_autocast(features, weight, bias), _grid_of(batch), targets, feature_rows, logit_rows, normaliser
    )


def _as_autocast(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """The inputs of a linear layer as autocast would run it: in the autocast dtype when autocast is on for
    their device (the `addmm(out=...)` inside is not an autocast op, and would refuse mixed dtypes)."""
    device = features.device.type
    if not torch.is_autocast_enabled(device):
        return features, weight, bias
    dtype = torch.get_autocast_dtype(device)
    return features.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)


# --------------------------------------------------------------------------------------------------------
# Writing logits, and the backward of the logits themselves.
# --------------------------------------------------------------------------------------------------------


def _grid_of(batch: PackedBatch | None) -> PackedBatch | None:
    """The batch whose padded grid the logits fill, or None when logits are one row per feature."""
    return None if batch is None or batch.indices is None else batch


def _linear_into(out: torch.Tensor, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    if bias is None:
        torch.mm(rows, weight.t(), out=out)
    else:
        torch.addmm(bias, rows, weight.t(), out=out)


def _write_logits(features, weight, bias, grid: PackedBatch | None) -> torch.Tensor:
    packed_shape = (features.shape[0], weight.shape[0])
    if grid is None or len(grid.grid_runs) > 4 * grid.batch_size + 16:  # scattered padding: then scatter
        out = features.new_empty(packed_shape)
        _linear_into(out, features, weight, bias)
        return out if grid is None else grid.repad(out).view(-1, packed_shape[1])
    out = features.new_empty(grid.batch_size * grid.seq_len, packed_shape[1])
    cursor = 0
    for grid_start, packed_start, length in grid.grid_runs:
        out[cursor:grid_start].zero_()
        rows = features[packed_start : packed_start + length]
        _linear_into(out[grid_start : grid_start + length], rows, weight, bias)
        cursor = grid_start + length
    out[cursor:].zero_()
    return out


def _logits_backward(grad_logits, features, weight, grid: PackedBatch | None, needs_input_grad):
    """Gradients of (features, weight, bias) from a gradient on the logits themselves (real rows only)."""
    grad_rows = grad_logits if grid is None else grad_logits[grid.indices]
    grad_features = grad_rows @ weight if needs_input_grad[0] else None
    grad_weight = grad_rows.t() @ features if needs_input_grad[1] else None
    grad_bias = grad_rows.sum(0) if needs_input_grad[2] else None
    return grad_features, grad_weight, grad_bias


class _Decode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, weight, bias, grid):
        ctx.save_for_backward(features, weight)
        ctx.grid = grid
        return _write_logits(features, weight, bias, grid)

    @staticmethod
    def backward(ctx, grad_logits):
        features, weight = ctx.saved_tensors
        grads = _logits_backward(grad_logits, features, weight, ctx.grid, ctx.needs_input_grad)
        return *grads, None


# --------------------------------------------------------------------------------------------------------
# Decoder + cross-entropy.
# --------------------------------------------------------------------------------------------------------


def _block_size(logits: torch.Tensor, other_dim: int) -> int:
    """How many rows (or vocabulary columns) of `other_dim` float32 values make one cache-sized block."""
    budget = _CPU_BLOCK_BYTES if logits.device.type == "cpu" else _ACCELERATOR_BLOCK_BYTES
    return max(1, budget // (4 * other_dim))


def _labelled_logits(logits: torch.Tensor, logit_rows: torch.Tensor | None, start: int, end: int):
    return logits[start:end] if logit_rows is None else logits.index_select(0, logit_rows[start:end])


def _log_sum_exp(logits: torch.Tensor, logit_rows: torch.Tensor | None, targets: torch.Tensor):
    """float32 `(logsumexp of each labelled row, its logit at the target)`, a few rows at a time."""
    count = targets.numel()
    lse = torch.empty(count, dtype=torch.float32, device=logits.device)
    picked = torch.empty_like(lse)
    step = _block_size(logits, logits.shape[1])
    for start in range(0, count, step):
        end = min(start + step, count)
        rows = _labelled_logits(logits, logit_rows, start, end).float()
        target = targets[start:end, None]
        log_prob = torch.log_softmax(rows, dim=-1).gather(1, target).squeeze(1)
        picked[start:end] = rows.gather(1, target).squeeze(1)
        lse[start:end] = picked[start:end] - log_prob
    return lse, picked


class _DecodeWithLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, weight, bias, grid, targets, feature_rows, logit_rows, normaliser):
        logits = _write_logits(features, weight, bias, grid)
        lse, picked = _log_sum_exp(logits, logit_rows, targets)
        loss = (lse - picked).sum() / normaliser  # float32, as transformers' loss on upcast logits
        ctx.save_for_backward(features, weight, logits, lse, targets, feature_rows, logit_rows)
        ctx.grid, ctx.normaliser, ctx.has_bias = grid, normaliser, bias is not None
        ctx.set_materialize_grads(False)
        return logits, loss

    @staticmethod
    def backward(ctx, grad_logits, grad_loss):
        features, weight, logits, lse, targets, feature_rows, logit_rows = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grads = [None, None, None]
        if grad_loss is not None:
            scale = grad_loss / ctx.normaliser
            grads = _loss_backward(
                scale, features, weight, logits, lse, targets, feature_rows, logit_rows, needs
            )
        if grad_logits is not None:
            extra = _logits_backward(grad_logits, features, weight, ctx.grid, needs)
            grads = [g if e is None else e if g is None else g + e for g, e in zip(grads, extra)]
        if not ctx.has_bias:
            grads[2] = None
        return *grads, None, None, None, None, None


def _loss_backward(scale, features, weight, logits, lse, targets, feature_rows, logit_rows, needs):
    """Gradients of `scale * sum(cross_entropy)` for (features, weight, bias), softmax block by block.

    With P = softmax of the labelled rows and Y their one-hot targets, d/d logits = scale * (P - Y), so
    grad features = scale * (P @ W - W[targets]), grad W = scale * (P^T @ X - scatter(X at targets)),
    grad bias = scale * (column sums of P - counts of each target).
    """
    rows = features if feature_rows is None else features.index_select(0, feature_rows)
    count, vocab_size = targets.numel(), weight.shape[0]
    scaled_rows = rows * scale.to(rows.dtype)
    grad_rows = torch.zeros_like(rows, dtype=torch.float32) if needs[0] else None
    grad_weight = torch.empty_like(weight) if needs[1] else None
    grad_bias = torch.empty(vocab_size, dtype=torch.float32, device=weight.device) if needs[2] else None
    shift = lse[:, None]
    step = _block_size(logits, count)
    for start in range(0, vocab_size, step):
        end = min(start + step, vocab_size)
        block = logits[:, start:end]
        block = block if logit_rows is None else block.index_select(0, logit_rows)
        probs = torch.sub(block.float(), shift).exp_()
        if grad_bias is not None:
            torch.sum(probs, dim=0, out=grad_bias[start:end])
        probs = probs.to(weight.dtype)
        if grad_weight is not None:
            torch.mm(probs.t(), scaled_rows, out=grad_weight[start:end])
        if grad_rows is not None and grad_rows.dtype == probs.dtype:
            grad_rows.addmm_(probs, weight[start:end])
        elif grad_rows is not None:  # half precision: accumulate the blocks in float32
            grad_rows += torch.mm(probs, weight[start:end]).float()

    grad_features = None
    if grad_rows is not None:
        grad_rows = (grad_rows - weight.index_select(0, targets)) * scale
        grad_rows = grad_rows.to(features.dtype)
        if feature_rows is None:
            grad_features = grad_rows
        else:
            grad_features = torch.zeros_like(features).index_copy_(0, feature_rows, grad_rows)
    if grad_weight is not None:
        grad_weight.index_add_(0, targets, scaled_rows, alpha=-1)
    if grad_bias is not None:
        counts = torch.bincount(targets, minlength=vocab_size).to(grad_bias.dtype)
        grad_bias = ((grad_bias - counts) * scale).to(weight.dtype)
    return [grad_features, grad_weight, grad_bias]
