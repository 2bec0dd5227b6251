"""Helpers shared by the tests/test_model_*.py files: tiny configs, paired RexBERT/ModernBERT models, batches."""

from __future__ import annotations

import torch
from transformers import ModernBertConfig

from modeling_rexbert import RexBertConfig

VOCAB = 101
PAD, CLS, SEP = 0, 1, 2


def tiny_config(**overrides) -> RexBertConfig:
    """A 3-layer, 64-wide config (layer 0 global, layers 1-2 local with a 16-token window)."""
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=2048,
        local_attention=16,
        pad_token_id=PAD,
        bos_token_id=CLS,
        eos_token_id=SEP,
        cls_token_id=CLS,
        sep_token_id=SEP,
    )
    fields.update(overrides)
    return RexBertConfig(**fields)


def config_for_tokenizer(tokenizer, **overrides) -> RexBertConfig:
    """A small RexBERT config (2 layers, 32 wide) whose vocabulary and special ids are the tokenizer's."""
    from modeling_rexbert.tokenization import tokenizer_config_kwargs

    fields = dict(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
        local_attention=16,
    )
    fields.update(overrides)
    return RexBertConfig(**tokenizer_config_kwargs(tokenizer), **fields)


def as_modernbert_config(config: RexBertConfig, attn_implementation: str = "sdpa") -> ModernBertConfig:
    """The same hyper-parameters as a transformers ModernBertConfig."""
    fields = {
        k: v for k, v in config.to_dict().items() if k not in ("model_type", "auto_map", "architectures")
    }
    reference = ModernBertConfig(**fields)
    reference._attn_implementation = attn_implementation
    return reference


def paired_models(
    ours_class, reference_class, config: RexBertConfig, attn_implementation: str, seed: int = 0
):
    """(ours, reference) in eval mode with identical random weights (ours initialised, copied into theirs)."""
    torch.manual_seed(seed)
    config._attn_implementation = attn_implementation
    ours = ours_class(config).eval()
    reference = reference_class(as_modernbert_config(config, attn_implementation)).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    return ours, reference


def random_batch(
    lengths: list[int], seq_len: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded `(input_ids, attention_mask)` with [CLS] ... [SEP] rows of the given lengths."""
    generator = torch.Generator().manual_seed(seed)
    seq_len = seq_len or max(lengths)
    ids = torch.full((len(lengths), seq_len), PAD, dtype=torch.long)
    mask = torch.zeros(len(lengths), seq_len, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(3, VOCAB, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = CLS, SEP
        mask[row, :length] = 1
    return ids, mask


def max_diff_on_real_tokens(ours: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor | None) -> float:
    """Max |ours - reference| over real (unpadded) positions of `(batch, seq_len, ...)` outputs."""
    if mask is None:
        return (ours - reference).abs().max().item()
    keep = mask.bool()
    return (ours[keep] - reference[keep]).abs().max().item()
