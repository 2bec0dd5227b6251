# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""The RexBERT classes (unpadded fast path) inside a model loaded with transformers' ModernBERT classes.

Published RexBERT models are ModernBERT-typed, so `SentenceTransformer(repo)`, `CrossEncoder(repo)` and
`pipeline(...)` build transformers' `ModernBert*` classes. One call gives package users the fast path on
them, with the same weights and the same outputs on real tokens:

    from sentence_transformers import SentenceTransformer
    from modeling_rexbert import with_rexbert_classes

    model = with_rexbert_classes(SentenceTransformer("shop-lab/rexbert-retrieval"))

Every `ModernBert*` module inside `model` (a sentence-transformers model of any version, a cross-encoder, a
pipeline's model, or a ModernBERT model itself) is replaced by the RexBERT class of the same head, built from
its config and loaded with its state dict (strict: every tensor must fit), on its device, dtype and
train/eval mode. Only torch and transformers are needed: the container is walked as `torch.nn.Module`s.
"""

from __future__ import annotations

import torch
import transformers
from torch import nn

from .configuration_rexbert import RexBertConfig, _renamed
from .modeling_rexbert import auto_classes

__all__ = ["rexbert_twin", "swap_modules", "with_rexbert_classes"]


def rexbert_twin(model: transformers.PreTrainedModel) -> transformers.PreTrainedModel:
    """The RexBERT model of `model`'s head (a `ModernBert*` model) with its weights, device, dtype and mode."""
    name = "RexBert" + type(model).__name__[len("ModernBert") :]
    model_class = {cls.__name__: cls for cls in auto_classes().values()}.get(name)
    if model_class is None:
        raise TypeError(f"{type(model).__name__} has no RexBERT class ({name})")
    fields = _renamed(model.config.to_dict(), "modernbert", "rexbert")
    fields.pop("model_type")
    config = RexBertConfig.from_dict(fields)
    config._attn_implementation = model.config._attn_implementation
    parameter = next(model.parameters())
    with torch.device("meta"):
        twin = model_class(config)
    twin.load_state_dict(model.state_dict(), strict=True, assign=True)
    twin.tie_weights()
    return twin.to(device=parameter.device, dtype=parameter.dtype).train(model.training)


def swap_modules(model: nn.Module, matches, replacement) -> nn.Module:
    """`model` with every module inside it for which `matches(module)` holds replaced, in its parent, by
    `replacement(module)`; `model` itself is returned as its replacement when it matches. The walk is over
    `torch.nn.Module` children only, so any container works (sentence-transformers, pipelines, plain torch)."""
    if matches(model):
        return replacement(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if matches(child):
                setattr(parent, child_name, replacement(child))
    return model


def with_rexbert_classes(model: nn.Module) -> nn.Module:
    """`model` with every transformers ModernBERT module inside it replaced by its RexBERT twin (see the module
    docstring); a ModernBERT model itself is returned as its twin."""
    modern = transformers.ModernBertPreTrainedModel
    return swap_modules(model, lambda module: isinstance(module, modern), rexbert_twin)
