# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""RexBERT configuration: ModernBERT's fields and defaults under `model_type="rexbert"`, plus size presets.

`RexBertConfig` subclasses transformers' `ModernBertConfig` rather than re-declaring its fields, so every
field name, default, validation rule and the legacy-key handling (`global_attn_every_n_layers`,
`global_rope_theta`, `local_rope_theta`, `rope_scaling` in older Hub configs) stay identical to ModernBERT's
by construction. A ModernBERT `config.json` therefore loads into `RexBertConfig` unchanged: published
RexBERT checkpoints are ModernBERT-typed (plain transformers loads them), and `RexBert*.from_pretrained` on
such a repo reads it as a RexBERT config (`model_type` and `architectures` renamed, quietly) and runs the
fast path.
"""

from __future__ import annotations

from typing import Any

from transformers.models.modernbert.configuration_modernbert import ModernBertConfig


class RexBertConfig(ModernBertConfig):
    r"""Configuration of a RexBERT encoder (the ModernBERT architecture).

    Fields (names and defaults are ModernBERT's; `rexbert_config` gives the project's size presets):

    Shape
        vocab_size (`int`, 50368): number of token ids.
        hidden_size (`int`, 768): width of the residual stream.
        intermediate_size (`int`, 1152): width of the GeGLU MLP (its input projection is twice this).
        num_hidden_layers (`int`, 22): number of encoder layers.
        num_attention_heads (`int`, 12): attention heads per layer; `hidden_size` must be a multiple.
        max_position_embeddings (`int`, 8192): longest sequence (per document) the model accepts.
    Attention
        layer_types (`list[str]`): per layer, `"full_attention"` (global) or `"sliding_attention"` (local).
            Built from the legacy keyword `global_attn_every_n_layers` (default 3: layers 0, 3, 6, ... are
            global) when not given.
        local_attention (`int`, 128): total width of the local window; a token in a local layer sees the keys
            whose position differs from its own by at most `local_attention // 2`.
        rope_parameters (`dict`): RoPE settings per layer type; `rope_parameters["full_attention"]["rope_theta"]`
            (default 160000) is the global theta and `["sliding_attention"]["rope_theta"]` (default 10000) the
            local one. The legacy keywords `global_rope_theta` / `local_rope_theta` are accepted.
        attention_bias (`bool`, False): bias in `Wqkv` and `Wo`.
        attention_dropout (`float`, 0.0): dropout on attention probabilities and on the attention output.
        deterministic_flash_attn (`bool`, False): ask flash-attn for its deterministic backward.
    Blocks and norms
        hidden_activation (`str`, "gelu"): activation of the GeGLU gate.
        mlp_bias (`bool`, False): bias in the MLP linears.
        mlp_dropout (`float`, 0.0): dropout inside the MLP.
        norm_eps (`float`, 1e-5): LayerNorm epsilon.
        norm_bias (`bool`, False): bias in the LayerNorms.
        embedding_dropout (`float`, 0.0): dropout after the embedding norm.
    Heads
        decoder_bias (`bool`, True): bias of the MLM decoder (its weight is tied to the token embeddings).
        tie_word_embeddings (`bool`, True): tie the MLM decoder to the token embeddings.
        sparse_prediction (`bool`, False): when labels are given, run the MLM head on the labelled
            positions only and return logits of shape `(num_labelled, vocab_size)`.
        sparse_pred_ignore_index (`int`, -100): label value that marks positions without a target.
        classifier_pooling (`"cls"` or `"mean"`, "cls"): pooling of the sequence-level heads.
        classifier_dropout (`float`, 0.0): dropout before the classifier.
        classifier_bias (`bool`, False): bias of the prediction-head dense layer.
        classifier_activation (`str`, "gelu"): activation of the prediction head.
    Initialisation
        initializer_range (`float`, 0.02): std of the truncated-normal initialiser.
        initializer_cutoff_factor (`float`, 2.0): truncation at this many stds.
    Special tokens
        pad_token_id (50283), bos_token_id (50281), eos_token_id (50282), cls_token_id (50281),
        sep_token_id (50282).

    Example:

    ```python
    >>> from modeling_rexbert import RexBertConfig, RexBertForMaskedLM
    >>> config = RexBertConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4)
    >>> model = RexBertForMaskedLM(config)
    ```
    """

    model_type = "rexbert"

    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path, **kwargs
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read a `config.json` as usual; a ModernBERT one is renamed to RexBERT (see the module docstring)."""
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type") == "modernbert":
            config_dict = _renamed(config_dict, "modernbert", "rexbert")
        return config_dict, kwargs


FAMILY_PREFIXES = {"rexbert": "RexBert", "modernbert": "ModernBert"}
"""model_type -> class-name prefix of the two families that share one checkpoint layout."""


def _renamed(config_dict: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """`config_dict` with the `target` family's model_type and architecture names; no `auto_map` when the
    target is ModernBERT (transformers has the code)."""
    source_prefix, target_prefix = FAMILY_PREFIXES[source], FAMILY_PREFIXES[target]
    architectures = [
        target_prefix + name[len(source_prefix) :] if name.startswith(source_prefix) else name
        for name in config_dict.get("architectures") or []
    ]
    renamed = {**config_dict, "model_type": target, "architectures": architectures or None}
    if target == "modernbert":
        renamed.pop("auto_map", None)
    return renamed


def as_modernbert_dict(config_dict: dict[str, Any]) -> dict[str, Any]:
    """A RexBERT `config.json` (as a dict) as the ModernBERT one of the same checkpoint: `model_type`
    "modernbert", `ModernBert*` architectures, no `auto_map`. Every other field is ModernBERT's already."""
    return _renamed(config_dict, "rexbert", "modernbert")


# Ettin encoder shapes (layers, hidden, intermediate, heads); every preset uses vocab 50368 and head dim 64.
PRESETS: dict[str, dict[str, int]] = {
    "rexbert-17m": dict(num_hidden_layers=7, hidden_size=256, intermediate_size=384, num_attention_heads=4),
    "rexbert-32m": dict(num_hidden_layers=10, hidden_size=384, intermediate_size=576, num_attention_heads=6),
    "rexbert-68m": dict(num_hidden_layers=19, hidden_size=512, intermediate_size=768, num_attention_heads=8),
    "rexbert-150m": dict(
        num_hidden_layers=22, hidden_size=768, intermediate_size=1152, num_attention_heads=12
    ),
    "rexbert-400m": dict(
        num_hidden_layers=28, hidden_size=1024, intermediate_size=2624, num_attention_heads=16
    ),
}

# Nominal size of each preset in parameters (the number in its name).
PRESET_SIZES: dict[str, int] = {name: int(name.split("-")[1][:-1]) * 1_000_000 for name in PRESETS}


def rexbert_config(preset: str, **overrides: Any) -> RexBertConfig:
    """Return the `RexBertConfig` of a size preset, with any field overridden by keyword.

    >>> rexbert_config("rexbert-17m", max_position_embeddings=1024).num_hidden_layers
    7
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown RexBERT preset {preset!r}; choose one of {sorted(PRESETS)}")
    return RexBertConfig(**{"vocab_size": 50368, **PRESETS[preset], **overrides})


__all__ = [
    "FAMILY_PREFIXES",
    "PRESETS",
    "PRESET_SIZES",
    "RexBertConfig",
    "as_modernbert_dict",
    "rexbert_config",
]
