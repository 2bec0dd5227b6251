"""Catalogue embedding at CPU speed: the encoder behind `rexbert embed`.

sentence-transformers' `encode` sorts texts by length, then runs batches of a fixed number of texts through
the model's padded inputs and outputs. `CatalogueEncoder` runs a sentence-transformers bi-encoder (Transformer,
mean or CLS Pooling, optionally Normalize) on RexBERT's unpadded stream instead:

- the model's ModernBERT classes are swapped for the RexBERT ones (`modeling_rexbert.with_rexbert_classes`:
  same weights, same outputs);
- every text is tokenized once (truncated at the model's `max_seq_length`), the texts are sorted by length and
  cut into token-budget batches (at most `max_tokens` tokens each), so hundreds of short titles go together
  and long descriptions a few at a time;
- a batch is one row of its texts' tokens back to back, position ids restarting at 0 at each text (the
  packing convention the model reads: texts never attend to each other), so there is no padding to build,
  remove or scatter back; each text's embedding is pooled straight from the packed tokens (mean: a segment
  sum; CLS: each text's first token) and normalised.

In float32 on a CPU the linear layers run through oneDNN (`modeling_rexbert.with_onednn_linear`: about
twice torch's default BLAS on the AMD EPYC measured, same outputs to float32 rounding). `int8=True` instead
quantizes the linear layers dynamically to int8 (`modeling_rexbert.with_int8_linear`, on
`torch.ao.quantization.quantize_dynamic`: weights int8 per tensor, activations per batch; fbgemm uses the
CPU's VNNI instructions where it has them). Either way attention runs on the package's packed AVX-512 kernel
where the CPU has AVX-512 (`modeling_rexbert.cpu_attention`: built once per machine in about 10 s, about 3.5x
PyTorch's SDPA on catalogue texts, same outputs to float32 rounding; `attention_kernel=False` keeps SDPA).
Other models (another pooling, a Dense module) go through the model's own `encode`, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["CatalogueEncoder", "token_budget_batches"]

DEFAULT_MAX_TOKENS = 8192


def token_budget_batches(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indices of `lengths`, longest first, grouped so that each group's tokens stay within `max_tokens`
    (a text longer than the budget goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current, used = [], [], 0
    for index in order:
        if current and used + lengths[index] > max_tokens:
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += lengths[index]
    if current:
        batches.append(current)
    return batches


def _packed_pooling(model) -> str | None:
    """ "mean" or "cls" when `model` (a SentenceTransformer) is Transformer + Pooling (+ Normalize) with one
    of those modes on a RexBERT encoder, else None (the model's own `encode` runs)."""
    from modeling_rexbert import RexBertModel

    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    if not isinstance(modules[0].auto_model, RexBertModel):
        return None
    mode = modules[1].pooling_mode
    mode = mode if isinstance(mode, str) else (mode[0] if len(mode) == 1 else None)
    return mode if mode in ("mean", "cls") else None


class CatalogueEncoder:
    """Unit-length float32 embeddings of texts with a sentence-transformers bi-encoder (see the module)."""

    def __init__(
        self,
        model,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        int8: bool = False,
        onednn: bool = True,
        attention_kernel: bool = True,
    ):
        from modeling_rexbert import with_onednn_linear, with_rexbert_classes
        from modeling_rexbert.cpu_attention import load_packed_cpu_attention

        self.model = with_rexbert_classes(model).eval()
        self.max_tokens = max_tokens
        if attention_kernel and self.model.device.type == "cpu":
            load_packed_cpu_attention()
        if int8:
            self.quantize()
        elif onednn:
            with_onednn_linear(self.model[0].auto_model)
        self.pooling = _packed_pooling(self.model)

    def quantize(self) -> None:
        from modeling_rexbert import with_int8_linear

        transformer = self.model[0]
        transformer.model = with_int8_linear(transformer.auto_model)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        tokenizer = self.model.tokenizer
        return tokenizer(
            list(texts), truncation=True, max_length=self.model.max_seq_length, add_special_tokens=True
        )["input_ids"]

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeddings of `texts` in their order; `progress(n)` is called with the texts done per batch."""
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), dtype=np.float32)
        if self.pooling is None:
            return self._encode_with_model(texts, progress)
        ids = self.token_ids(texts)
        embeddings = None
        for batch in token_budget_batches([len(i) for i in ids], self.max_tokens):
            pooled = self._encode_packed([ids[i] for i in batch])
            if embeddings is None:
                embeddings = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            embeddings[batch] = pooled
            if progress is not None:
                progress(len(batch))
        return embeddings

    @torch.inference_mode()
    def _encode_packed(self, token_ids: list[list[int]]) -> np.ndarray:
        encoder = self.model[0].auto_model
        device = encoder.get_input_embeddings().weight.device
        lengths = torch.tensor([len(t) for t in token_ids])
        flat = torch.tensor([token for text in token_ids for token in text], device=device)[None]
        starts = torch.cumsum(lengths, 0) - lengths
        positions = (torch.arange(flat.shape[1]) - torch.repeat_interleave(starts, lengths))[None]
        hidden = encoder.encode(flat, position_ids=positions.to(device)).last_hidden_state.float()
        if self.pooling == "cls":
            pooled = hidden[starts.to(device)]
        else:
            document = torch.repeat_interleave(torch.arange(len(token_ids)), lengths).to(device)
            pooled = torch.zeros(len(token_ids), hidden.shape[1], device=device).index_add_(
                0, document, hidden
            )
            pooled = pooled / lengths.to(device)[:, None]
        return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()

    def _encode_with_model(self, texts, progress) -> np.ndarray:
        embeddings = self.model.encode(
            list(texts),
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        if progress is not None:
            progress(len(texts))
        return np.ascontiguousarray(embeddings, dtype=np.float32)
