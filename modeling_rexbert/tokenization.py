# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""ModernBERT-style fast tokenizers for RexBERT.

ModernBERT reuses the OLMo / GPT-NeoX byte-level BPE (50,280 entries) and changes only what sits
around it: five BERT special tokens appended after the base vocabulary, a `[CLS] A [SEP] (B [SEP])`
post-processor, no `token_type_ids`, and unused filler tokens so the embedding matrix has a size
divisible by 64 (faster matmuls). Two builders produce tokenizers with exactly those semantics:

- `build_modernbert_tokenizer(path)` starts from an OLMo-style `tokenizer.json`; on the OLMo
  Dolma v1.5 file it reproduces ModernBERT's layout: [UNK]=50280, [CLS]=50281, [SEP]=50282,
  [PAD]=50283, [MASK]=50284, [unused0]..[unused82] up to a vocabulary of 50,368.
- `train_bpe_tokenizer(texts)` trains a small byte-level BPE on local text, with the specials at
  ids 0..4, for offline demos and tests.

Code that builds a model from a tokenizer should read the ids from the tokenizer
(`tokenizer_config_kwargs(tokenizer)`), never hard-code them.

Where the ids come from: 50280..50284 and the vocabulary of 50,368 match the defaults of
transformers' `ModernBertConfig` (pad 50283, cls/bos 50281, sep/eos 50282). The name of the
filler tokens (`[unusedN]`) is our assumption: only their count matters to the model.
One deliberate difference from the Hub ModernBERT tokenizer: `clean_up_tokenization_spaces` is
False, because byte-level BPE is lossless and the clean-up would rewrite text such as "a , b"
on decode.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import PretrainedConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "MODERNBERT_VOCAB_SIZE",
    "SPECIAL_TOKENS",
    "VOCAB_MULTIPLE",
    "build_modernbert_tokenizer",
    "fit_to_model",
    "round_up",
    "tokenizer_config_kwargs",
    "train_bpe_tokenizer",
]

SPECIAL_TOKENS = {"unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}
"""The five specials, in the order ModernBERT numbers them."""

VOCAB_MULTIPLE = 64
MODERNBERT_VOCAB_SIZE = 50368
DEFAULT_MAX_LENGTH = 8192


def _special_added_tokens() -> list[AddedToken]:
    """[UNK] [CLS] [SEP] [PAD] [MASK]. As in ModernBERT, [MASK] absorbs the space before it: in
    "a [MASK] phone" it stands for a whole word token with its leading space (such as " red"),
    which is what masked positions hold during pretraining."""
    return [
        AddedToken(text, lstrip=(name == "mask"), rstrip=False, normalized=False, special=True)
        for name, text in SPECIAL_TOKENS.items()
    ]


def round_up(value: int, multiple: int = VOCAB_MULTIPLE) -> int:
    """Smallest multiple of `multiple` that is >= `value`."""
    return -(-value // multiple) * multiple


def _add_specials_and_filler(tokenizer: Tokenizer, padded_vocab_size: int | None) -> None:
    """Append the five specials, then `[unusedN]` tokens up to `padded_vocab_size` entries
    (None: up to the next multiple of 64)."""
    tokenizer.add_special_tokens(_special_added_tokens())
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    target = round_up(size) if padded_vocab_size is None else padded_vocab_size
    if target < size:
        raise ValueError(f"padded_vocab_size={target} is smaller than the {size} tokens with specials")
    tokenizer.add_special_tokens(
        [AddedToken(f"[unused{i}]", normalized=False, special=True) for i in range(target - size)]
    )
    ids = [tokenizer.token_to_id(text) for text in SPECIAL_TOKENS.values()]
    if ids != list(range(ids[0], ids[0] + len(ids))):
        raise ValueError(
            f"special tokens did not get consecutive ids: {dict(zip(SPECIAL_TOKENS.values(), ids))}"
        )


def _set_bert_post_processor(tokenizer: Tokenizer) -> None:
    """`[CLS] $A [SEP]` for one text and `[CLS] $A [SEP] $B [SEP]` for a pair."""
    cls, sep = SPECIAL_TOKENS["cls"], SPECIAL_TOKENS["sep"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
    )


def _wrap(tokenizer: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    """A transformers fast tokenizer with the ModernBERT special-token attributes."""
    specials = {added.content: added for added in _special_added_tokens()}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token=specials["[UNK]"],
        cls_token=specials["[CLS]"],
        sep_token=specials["[SEP]"],
        pad_token=specials["[PAD]"],
        mask_token=specials["[MASK]"],
        bos_token=specials["[CLS]"],
        eos_token=specials["[SEP]"],
        model_max_length=model_max_length,
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
    )


def build_modernbert_tokenizer(
    tokenizer_json_path: str | Path,
    *,
    padded_vocab_size: int | None = MODERNBERT_VOCAB_SIZE,
    model_max_length: int = DEFAULT_MAX_LENGTH,
) -> PreTrainedTokenizerFast:
    """Turn an OLMo-style byte-level BPE `tokenizer.json` into a ModernBERT-style tokenizer.

    The base vocabulary, merges, normalizer, pre-tokenizer and decoder are kept as they are; the
    specials are appended after the base vocabulary (ids 50280..50284 for the OLMo file) and the
    vocabulary is padded with `[unusedN]` to `padded_vocab_size` entries: ModernBERT's 50,368 by
    default (83 fillers, one block of 64 more than the smallest multiple of 64), or the next
    multiple of 64 when None, for base vocabularies of another size.
    """
    path = Path(tokenizer_json_path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer.json not found: {path}")
    tokenizer = Tokenizer.from_file(str(path))
    model_type = json.loads(path.read_text(encoding="utf-8"))["model"].get("type")
    if model_type != "BPE":
        raise ValueError(f"{path} holds a {model_type} model; expected an OLMo-style byte-level BPE")
    clashes = [text for text in SPECIAL_TOKENS.values() if tokenizer.token_to_id(text) is not None]
    if clashes:
        raise ValueError(f"{path} already defines {clashes}; it is not a bare OLMo-style tokenizer")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    _add_specials_and_filler(tokenizer, padded_vocab_size)
    _set_bert_post_processor(tokenizer)
    return _wrap(tokenizer, model_max_length)


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 2048,
    *,
    min_frequency: int = 2,
    model_max_length: int = DEFAULT_MAX_LENGTH,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a small byte-level BPE on local text, with ModernBERT's specials at ids 0..4 (`show_progress`:
    the tokenizers library's own progress bar).

    Same pipeline as the OLMo tokenizer (NFC, GPT-2 style byte-level pre-tokenization without a
    prefix space, byte-level decoder), so any text encodes and decodes back losslessly. The
    vocabulary (specials and the 256 byte symbols included) has at most `vocab_size` learned
    entries, then `[unusedN]` filler up to the next multiple of 64. Training is
    deterministic for a given text order.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size} cannot hold the 256 byte symbols and the specials")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=_special_added_tokens(),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    _add_specials_and_filler(tokenizer, None)
    _set_bert_post_processor(tokenizer)
    return _wrap(tokenizer, model_max_length)


def tokenizer_config_kwargs(
    tokenizer: PreTrainedTokenizerFast, multiple: int = VOCAB_MULTIPLE
) -> dict[str, int]:
    """Model-config fields that must agree with `tokenizer`: the vocabulary size (rounded up to a
    multiple of `multiple`) and the pad/cls/sep/bos/eos ids, named as in `ModernBertConfig`, so
    `RexBertConfig(**tokenizer_config_kwargs(tokenizer), ...)` cannot disagree with the tokenizer."""
    return {
        "vocab_size": round_up(len(tokenizer), multiple),
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }


def fit_to_model(tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig) -> PreTrainedTokenizerBase:
    """Set `model_max_length` to the model's `max_position_embeddings` before the tokenizer is saved with the
    model, so `truncation=True` cuts where the model's positions end (a tokenizer built with the 8,192 default
    would otherwise let a 256-position model receive 8,192 tokens). Returns the tokenizer."""
    tokenizer.model_max_length = config.max_position_embeddings
    return tokenizer
