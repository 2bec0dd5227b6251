"""`RexBertTrainer`: the transformers `Trainer` with the few hooks curriculum MLM pretraining needs.

Everything else (optimizer stepping, gradient accumulation, mixed precision, checkpointing,
accelerate / torchrun / FSDP / DeepSpeed) is the stock Trainer's. The overrides are:

- `get_train_dataloader`: wraps the `MixtureStream` (which yields ready, collated batches, sharded
  by process) in a plain `DataLoader`; the stream's own seed-derived order replaces sampling.
- `create_scheduler`: a `LambdaLR` with one of `trainers.schedules` (WSD, 1-sqrt, constant).
- `compute_loss`: drops the per-row `source_ids` before the forward pass and accumulates, without
  gradients, the MLM loss and masked-token accuracy per source for the logs.
- `log`: adds those metrics and the current mixture weights, masking rate, guidance and batch
  size to every training log.

Resuming continues the data stream exactly: `MixtureStateCallback` restores the stream from the
checkpoint's `mixture_state.json`, so the Trainer's own batch skipping is switched off
(`ignore_data_skip`), which also spares it re-reading every trained batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from transformers import Trainer

from .mixture import MixtureStateCallback, MixtureStream

__all__ = ["RexBertTrainer"]


class RexBertTrainer(Trainer):
    """Trainer over a `MixtureStream`.

    Args:
        train_stream: the batches to train on (also passed on as `train_dataset`).
        lr_lambda: multiplier of the peak learning rate per optimizer step (None: the Trainer's own
            `lr_scheduler_type`).
        *args, **kwargs: as for `transformers.Trainer`.
    """

    def __init__(
        self, *args, train_stream: MixtureStream, lr_lambda: Callable[[int], float] | None = None, **kwargs
    ):
        kwargs["train_dataset"] = train_stream
        super().__init__(*args, **kwargs)
        self.train_stream = train_stream
        self.lr_lambda = lr_lambda
        self.args.ignore_data_skip = True  # the stream resumes itself (see the module docstring)
        self.add_callback(MixtureStateCallback(train_stream))
        self._source_stats = torch.zeros(3, len(train_stream.source_names), dtype=torch.float64)

    def get_train_dataloader(self) -> DataLoader:
        """The stream already batches, collates and shards by process (see `MixtureStream.shard`);
        the loader only hands batches over, in the main process where the stream's resume state
        lives. It is not passed through `accelerator.prepare`, whose re-sharding of iterable
        datasets would split the stream a second time; the Trainer moves inputs to the device."""
        self.train_stream.shard(self.args.world_size, self.args.process_index)
        return DataLoader(
            self.train_stream,
            batch_size=None,
            num_workers=0,
            pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available(),
        )

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if self.lr_lambda is None:
            return super().create_scheduler(num_training_steps, optimizer)
        if self.lr_scheduler is None:
            self.lr_scheduler = LambdaLR(self.optimizer if optimizer is None else optimizer, self.lr_lambda)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        source_ids = inputs.pop("source_ids", None)
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        if model.training and source_ids is not None:
            self._track_sources(outputs.logits, inputs["labels"], source_ids)
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _track_sources(self, logits: torch.Tensor, labels: torch.Tensor, source_ids: torch.Tensor) -> None:
        """Sum of token losses, correct predictions and masked tokens per source. Works with dense
        logits `(batch, seq, vocab)` and with sparse ones `(masked tokens, vocab)`."""
        flat_labels = labels.reshape(-1)
        labelled = (flat_labels != -100).nonzero().squeeze(1)
        if labelled.numel() == 0:
            return
        if logits.dim() == 3:
            logits = logits.reshape(-1, logits.shape[-1]).index_select(0, labelled)
        target = flat_labels.index_select(0, labelled)
        token_loss = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
        correct = (logits.argmax(-1) == target).double()
        source = source_ids.to(labels.device)[labelled // labels.shape[1]]
        stats = torch.stack([token_loss.double(), correct, torch.ones_like(correct)])
        totals = torch.zeros(3, self._source_stats.shape[1], dtype=torch.float64, device=labels.device)
        totals.index_add_(1, source, stats)
        self._source_stats += totals.cpu()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self.model.training:
            logs.update(self._drain_source_metrics())
            progress = self.state.global_step / max(self.state.max_steps, 1)
            logs.update(self.train_stream.describe(progress))
        super().log(logs, start_time)

    def _drain_source_metrics(self) -> dict[str, float]:
        """Per-source loss and accuracy since the last log, then reset the sums."""
        loss_sum, correct, count = self._source_stats
        metrics = {}
        if count.sum() > 0:
            metrics["mlm_accuracy"] = float(correct.sum() / count.sum())
        for index, name in enumerate(self.train_stream.source_names):
            if count[index] > 0:
                metrics[f"loss/{name}"] = float(loss_sum[index] / count[index])
                metrics[f"mlm_accuracy/{name}"] = float(correct[index] / count[index])
        self._source_stats.zero_()
        return metrics
