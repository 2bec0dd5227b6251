"""`RexBertTrainer`: the transformers `Trainer` with the few hooks curriculum MLM pretraining needs.

Everything else (optimizer stepping, the warmup-stable-decay schedule, gradient accumulation, mixed
precision, checkpointing, DDP / FSDP / DeepSpeed through accelerate) is the stock Trainer's. The overrides:

- `get_train_dataloader`: wraps the `MixtureStream` (which yields ready, collated batches, sharded by
  process, and by DataLoader worker when `dataloader_num_workers` > 0) in a plain `DataLoader`; the
  stream's own seed-derived order replaces sampling.
- `training_step`: hands each loss to the `DivergenceGuard` (`trainers.divergence`), which stops the run at
  the first non-finite loss or gradient, on every process, before the weights change.
- `compute_loss`: drops the per-row `source_ids` before the forward pass and accumulates, without
  gradients, the MLM loss and masked-token accuracy per source for the logs; takes the streaming sources'
  positions a batch carries, so a checkpoint holds those of the batches trained on (not those read ahead).
- `log`: adds those metrics, summed over processes, and the current mixture weights, masking rate,
  guidance and batch size to every training log.
- `evaluate`: the held-out validation batches (`trainers.validation`), split over processes: MLM loss and
  masked-token accuracy per source, logged as `eval/...`.

Resuming continues the data stream exactly: `MixtureStateCallback` restores the stream from the
checkpoint's `mixture_state.json`, so the Trainer's own batch skipping is switched off
(`ignore_data_skip`), which also spares it re-reading every trained batch.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader
from transformers import Trainer

from rexbert_core.typed_config import DataError

from .checkpoints import CheckpointChecksumsCallback
from .divergence import DivergenceGuard
from .mixture import MixtureStream
from .stream_checkpoint import MixtureStateCallback

__all__ = ["RexBertTrainer", "per_source_sums"]


def per_source_sums(logits: torch.Tensor, labels: torch.Tensor, source_ids: torch.Tensor, n_sources: int):
    """(3, sources) float64: summed token loss, correct predictions and masked tokens per source. Works with
    dense logits `(batch, seq, vocab)` and with sparse ones `(masked tokens, vocab)`."""
    totals = torch.zeros(3, n_sources, dtype=torch.float64, device=labels.device)
    flat_labels = labels.reshape(-1)
    labelled = (flat_labels != -100).nonzero().squeeze(1)
    if labelled.numel() == 0:
        return totals
    if logits.dim() == 3:
        logits = logits.reshape(-1, logits.shape[-1]).index_select(0, labelled)
    target = flat_labels.index_select(0, labelled)
    token_loss = torch.nn.functional.cross_entropy(logits.float(), target, reduction="none")
    correct = (logits.argmax(-1) == target).double()
    source = source_ids.to(labels.device)[labelled // labels.shape[1]]
    return totals.index_add_(1, source, torch.stack([token_loss.double(), correct, torch.ones_like(correct)]))


class RexBertTrainer(Trainer):
    """Trainer over a `MixtureStream`.

    Args:
        train_stream: the batches to train on (also passed on as `train_dataset`).
        validation_batches: collated held-out batches with `source_ids` (`trainers.validation`), evaluated
            every `eval_steps`; None for no validation.
        *args, **kwargs: as for `transformers.Trainer`.
    """

    def __init__(self, *args, train_stream: MixtureStream, validation_batches: list | None = None, **kwargs):
        kwargs["train_dataset"] = train_stream
        if validation_batches:
            kwargs.setdefault("eval_dataset", validation_batches)
        super().__init__(*args, **kwargs)
        self.train_stream = train_stream
        self.validation_batches = validation_batches or []
        self.args.ignore_data_skip = True  # the stream resumes itself (see the module docstring)
        train_stream.report_positions = bool(train_stream.streaming_sources)
        self.add_callback(MixtureStateCallback(train_stream))
        self.add_callback(CheckpointChecksumsCallback())  # last: it hashes what the others wrote
        self.divergence_guard = DivergenceGuard()
        self.add_callback(self.divergence_guard)
        self._source_stats = torch.zeros(3, len(train_stream.source_names), dtype=torch.float64)

    def get_train_dataloader(self) -> DataLoader:
        """The stream already batches, collates and shards by process (see `MixtureStream.shard`);
        the loader only hands batches over (its workers, if any, each build every W-th batch of this
        process and the loader returns them in order). It is not passed through `accelerator.prepare`,
        whose re-sharding of iterable datasets would split the stream a second time; the Trainer moves
        inputs to the device."""
        self.train_stream.shard(self.args.world_size, self.args.process_index)
        workers = self.args.dataloader_num_workers
        self.train_stream.check_readers(workers)
        steps = self.args.save_steps if self.args.save_strategy == "steps" else 0
        steps = math.ceil(steps * self.args.max_steps) if 0 < steps < 1 else int(steps)  # a ratio
        if (
            self.train_stream.streaming_sources
            and workers > 1
            and steps * self.train_stream.grad_accum % workers
        ):
            raise DataError(
                f"streaming sources read by {workers} dataloader workers resume only at a batch of worker 0: "
                f"make save_steps x gradient accumulation ({steps} x {self.train_stream.grad_accum}) a multiple "
                f"of {workers}"
            )
        return DataLoader(
            self.train_stream,
            batch_size=None,
            num_workers=workers,
            persistent_workers=False,
            prefetch_factor=self.args.dataloader_prefetch_factor if workers else None,
            pin_memory=self.args.dataloader_pin_memory and torch.cuda.is_available(),
        )

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.divergence_guard.observe_loss(loss)
        return loss

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        source_ids = inputs.pop("source_ids", None)
        positions = inputs.pop("stream_positions", None)
        if positions is not None and model.training:
            self.train_stream.record_consumed(positions)
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        if model.training and source_ids is not None:
            with torch.no_grad():
                sums = per_source_sums(
                    outputs.logits, inputs["labels"], source_ids, self._source_stats.shape[1]
                )
            self._source_stats += sums.cpu()
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self.model.training:
            logs.update(self._drain_source_metrics())
            progress = self.state.global_step / max(self.state.max_steps, 1)
            logs.update(self.train_stream.describe(progress))
        super().log(logs, start_time)

    def _drain_source_metrics(self) -> dict[str, float]:
        """Per-source loss and accuracy since the last log, summed over processes; then reset the sums."""
        totals = self.accelerator.reduce(self._source_stats.to(self.args.device), reduction="sum").cpu()
        self._source_stats.zero_()
        return _source_metrics(totals, self.train_stream.source_names, prefix="")

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """MLM loss and masked-token accuracy per source on the validation batches. Each process scores
        every W-th batch; all make the same number of forward passes (the last may repeat a batch whose
        sums are left out), since a wrapped model's forward can be a collective operation."""
        batches = self.validation_batches
        if not batches:
            return {}
        rank, world = self.args.process_index, self.args.world_size
        mine, rounds = batches[rank::world], math.ceil(len(batches) / world)
        model = self.model_wrapped
        model.eval()
        totals = torch.zeros(
            3, len(self.train_stream.source_names), dtype=torch.float64, device=self.args.device
        )
        with torch.no_grad():
            for index in range(rounds):
                batch = dict(mine[index] if index < len(mine) else batches[0])
                source_ids = batch.pop("source_ids")
                inputs = self._prepare_inputs(batch)
                outputs = model(**inputs)
                if index < len(mine):
                    totals += per_source_sums(outputs.logits, inputs["labels"], source_ids, totals.shape[1])
        totals = self.accelerator.reduce(totals, reduction="sum").cpu()
        metrics = _source_metrics(totals, self.train_stream.source_names, prefix=f"{metric_key_prefix}/")
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def _source_metrics(totals: torch.Tensor, names: list[str], prefix: str) -> dict[str, float]:
    loss_sum, correct, count = totals
    metrics = {}
    if count.sum() > 0:
        if prefix:  # the training loss is the Trainer's own `loss`
            metrics[f"{prefix}loss"] = float(loss_sum.sum() / count.sum())
        metrics[f"{prefix}mlm_accuracy"] = float(correct.sum() / count.sum())
    for index, name in enumerate(names):
        if count[index] > 0:
            metrics[f"{prefix}loss/{name}"] = float(loss_sum[index] / count[index])
            metrics[f"{prefix}mlm_accuracy/{name}"] = float(correct[index] / count[index])
    return metrics
