"""Tiny local checkpoints for tests, demos and benchmarks of the suites (no Hub access needed).

`tiny_checkpoint` saves a small tokenizer + ModernBERT-shaped masked-LM to a directory the suites
can load; `train_masked_lm` gives such a model a few optimisation steps on text, to show that the
suites tell a model that has seen product text from one that has not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from transformers import DataCollatorForLanguageModeling, ModernBertConfig, ModernBertForMaskedLM

from modeling_rexbert.tokenization import tokenizer_config_kwargs, train_bpe_tokenizer

TINY_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 256,
    "local_attention": 64,
    "global_attn_every_n_layers": 2,
}


def rexbert_available() -> bool:
    """True once `modeling_rexbert` exports the model classes (not just the config/tokenizer)."""
    try:
        from modeling_rexbert import RexBertForMaskedLM  # noqa: F401
    except ImportError:
        return False
    return True


def tiny_checkpoint(
    out_dir: str | Path,
    texts: Sequence[str],
    vocab_size: int = 1024,
    family: str = "modernbert",
    seed: int = 0,
    **shape,
) -> Path:
    """Train a small BPE on `texts`, build a randomly initialised tiny masked-LM, save both.

    family: "modernbert" (transformers' ModernBertForMaskedLM) or "rexbert" (RexBertForMaskedLM).
    """
    out_dir = Path(out_dir)
    tokenizer = train_bpe_tokenizer(
        texts, vocab_size=vocab_size, model_max_length=TINY_SHAPE["max_position_embeddings"]
    )
    settings = {**TINY_SHAPE, **tokenizer_config_kwargs(tokenizer), **shape}
    torch.manual_seed(seed)
    if family == "rexbert":
        from modeling_rexbert import RexBertConfig, RexBertForMaskedLM

        model = RexBertForMaskedLM(RexBertConfig(**settings))
    elif family == "modernbert":
        model = ModernBertForMaskedLM(ModernBertConfig(**settings))
    else:
        raise ValueError(f"unknown model family {family!r}; expected modernbert or rexbert")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def train_masked_lm(
    model_dir: str | Path,
    out_dir: str | Path,
    texts: Sequence[str],
    steps: int = 40,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> Path:
    """A few AdamW steps of standard MLM (15%, 80/10/10) on `texts`; saves model + tokenizer to `out_dir`."""
    from eval_suites.models import load_masked_lm, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_masked_lm(model_dir).train()
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)
    encoded = tokenizer(list(texts), truncation=True, max_length=64)["input_ids"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    for step in range(steps):
        start = (step * batch_size) % max(1, len(encoded) - batch_size)
        batch = collator([{"input_ids": ids} for ids in encoded[start : start + batch_size]])
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval().save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)
