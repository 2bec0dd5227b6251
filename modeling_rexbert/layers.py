# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""The encoder's building blocks, with the module and parameter names of transformers' ModernBERT so its
checkpoints load unchanged: embeddings, the GeGLU MLP, attention over a packed batch (or the padded grid), the
pre-norm encoder layer and the prediction head shared by every task head."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer

from .attention import attention_forward
from .configuration_rexbert import RexBertConfig
from .padded import GridBatch, grid_attention
from .rotary import apply_rotary, apply_rotary_to_pairs, pair_order
from .unpadding import PackedBatch

__all__ = [
    "RexBertAttention",
    "RexBertEmbeddings",
    "RexBertEncoderLayer",
    "RexBertMLP",
    "RexBertPredictionHead",
]


class RexBertEmbeddings(nn.Module):
    """Token embeddings followed by LayerNorm and dropout (no absolute position embeddings)."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.drop = nn.Dropout(config.embedding_dropout)

    def forward(
        self, input_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None
    ) -> torch.Tensor:
        embeds = self.tok_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return self.drop(self.norm(embeds))


class RexBertMLP(nn.Module):
    """GeGLU feed-forward: `Wi` projects to twice the intermediate width, half gates the other half."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, int(config.intermediate_size) * 2, bias=config.mlp_bias)
        self.act = ACT2FN[config.hidden_activation]
        self.drop = nn.Dropout(config.mlp_dropout)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        value, gate = self.Wi(hidden_states).chunk(2, dim=-1)
        return self.Wo(self.drop(self.act(value) * gate))


class RexBertAttention(nn.Module):
    """Multi-head self-attention over a packed batch; local layers see `local_attention // 2` tokens each side."""

    def __init__(self, config: RexBertConfig, layer_idx: int):
        super().__init__()
        if config.hidden_size % config.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({config.hidden_size}) is not a multiple of num_attention_heads "
                f"({config.num_attention_heads})"
            )
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.window = (
            config.local_attention // 2 if config.layer_types[layer_idx] == "sliding_attention" else None
        )
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.out_drop = (
            nn.Dropout(config.attention_dropout) if config.attention_dropout > 0.0 else nn.Identity()
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        cos_sin: tuple[torch.Tensor, torch.Tensor],
        batch: PackedBatch | GridBatch,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(output, attention weights): packed `(tokens, hidden)` rows through `config._attn_implementation`
        (no weights), or the padded grid (`padded.py`; weights when eager)."""
        if isinstance(batch, GridBatch):
            return grid_attention(self, hidden_states, cos_sin, batch)
        num_tokens = hidden_states.shape[0]
        if getattr(self.Wqkv, "takes_output_order", False):  # OneDnnLinear: rotary pairs side by side, free
            qkv = self.Wqkv(hidden_states, output_order=pair_order(self.num_heads, self.head_dim))
            rotate = apply_rotary_to_pairs
        else:
            qkv, rotate = self.Wqkv(hidden_states), apply_rotary
        qkv = qkv.view(num_tokens, 3, self.num_heads, self.head_dim)
        # `split` rather than indexing: its backward is one concatenation instead of two zero-filled copies.
        query_key, value = qkv.split((2, 1), dim=1)
        query, key = rotate(query_key, *cos_sin).unbind(dim=1)
        value = value.squeeze(1)
        attended = attention_forward(
            self.config._attn_implementation,
            query,
            key,
            value,
            batch,
            window=self.window,
            dropout=self.config.attention_dropout if self.training else 0.0,
            deterministic=self.config.deterministic_flash_attn,
        )
        return self.out_drop(self.Wo(attended.reshape(num_tokens, -1))), None


class RexBertEncoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)); layer 0 skips the attention norm
    because the embeddings are already normalised."""

    def __init__(self, config: RexBertConfig, layer_idx: int):
        super().__init__()
        self.attention_type = config.layer_types[layer_idx]
        if layer_idx == 0:
            self.attn_norm = nn.Identity()
        else:
            self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.attn = RexBertAttention(config, layer_idx)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
        self.mlp = RexBertMLP(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        cos_sin: tuple[torch.Tensor, torch.Tensor],
        batch: PackedBatch | GridBatch,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(output, attention weights or None), on packed rows or the padded grid alike."""
        attended, weights = self.attn(self.attn_norm(hidden_states), cos_sin, batch)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.mlp_norm(hidden_states)), weights


class RexBertPredictionHead(nn.Module):
    """dense -> activation -> LayerNorm, shared by the MLM and classification heads."""

    def __init__(self, config: RexBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, config.classifier_bias)
        self.act = ACT2FN[config.classifier_activation]
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(hidden_states)))
