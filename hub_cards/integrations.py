"""Glue between RexBERT checkpoints and the libraries users reach for first.

- `make_sentence_transformer(model_dir)`: add the sentence-transformers configuration (modules.json,
  sentence_bert_config.json, config_sentence_transformers.json and the pooling folder) to a saved model,
  so `SentenceTransformer(model_dir)` (or the Hub repo) loads with the chosen pooling instead of guessing.
  The files are written by sentence-transformers' own `save`, into a scratch folder, and only the
  configuration is copied over: the weights in `model_dir` stay untouched.
- `lora_config(task_type)`: a PEFT `LoraConfig` on RexBERT's linear layers. RexBERT keeps ModernBERT's
  module names: `Wqkv` (fused query/key/value), `Wo` (attention output) and `Wi` (GeGLU input); the
  attention-only variant `["Wqkv", "Wo"]` also works. For the classification and token-classification
  task types PEFT keeps the freshly initialised `classifier` fully trainable and saves it with the adapter.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "LORA_TARGET_MODULES",
    "SENTENCE_TRANSFORMERS_CONFIG_FILES",
    "lora_config",
    "make_sentence_transformer",
]

LORA_TARGET_MODULES = ["Wqkv", "Wo", "Wi"]
SENTENCE_TRANSFORMERS_CONFIG_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)


def make_sentence_transformer(
    model_dir: str | Path, pooling: str = "mean", max_seq_length: int | None = None
) -> Path:
    """Write the sentence-transformers configuration for `model_dir` (Transformer + `pooling` Pooling).

    Returns `model_dir`. Loading afterwards: `SentenceTransformer(model_dir)` with the `modeling_rexbert`
    package imported (a local directory is RexBERT-typed), and `SentenceTransformer(repo_id)` with nothing
    else once `rexbert push` has published it ModernBERT-typed.
    """
    import transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    import modeling_rexbert  # noqa: F401  (registers model_type "rexbert" with the Auto classes)

    model_dir = Path(model_dir)
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()  # the bare encoder leaves an MLM head out, as it should
    try:
        transformer = Transformer(str(model_dir), max_seq_length=max_seq_length)
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    pooler = Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling)
    encoder = SentenceTransformer(modules=[transformer, pooler], device="cpu")
    with tempfile.TemporaryDirectory() as scratch:
        encoder.save(scratch)
        scratch = Path(scratch)
        for name in SENTENCE_TRANSFORMERS_CONFIG_FILES:
            shutil.copy2(scratch / name, model_dir / name)
        for module in json.loads((scratch / "modules.json").read_text()):
            if module["path"]:  # the root module is the transformer itself, already in model_dir
                shutil.copytree(scratch / module["path"], model_dir / module["path"], dirs_exist_ok=True)
    if max_seq_length is not None:  # sentence-transformers 6 keeps it as the tokenizer's model_max_length
        _set_tokenizer_length(model_dir, max_seq_length)
    return model_dir


def _set_tokenizer_length(model_dir: Path, length: int) -> None:
    path = model_dir / "tokenizer_config.json"
    settings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    path.write_text(json.dumps({**settings, "model_max_length": length}, indent=2) + "\n", encoding="utf-8")


def lora_config(
    task_type: str = "SEQ_CLS",
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: list[str] | None = None,
):
    """A `peft.LoraConfig` for a RexBERT head ("SEQ_CLS", "TOKEN_CLS", "FEATURE_EXTRACTION", ...)."""
    from peft import LoraConfig

    return LoraConfig(
        task_type=task_type,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules or LORA_TARGET_MODULES),
    )
