"""Loading checkpoints for the suites, with clear errors when a checkpoint cannot serve a suite.

Any directory `transformers`' Auto classes can read works: RexBERT (registered by importing
`modeling_rexbert`), ModernBERT, BERT-style encoders. Fine-tuning suites start a fresh task head
on the pretrained encoder; the masked-token suite needs the checkpoint's own MLM head.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from pathlib import Path

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rexbert_core.safe_outputs import verify_model_dir
from rexbert_core.typed_config import DataError

__all__ = [
    "FRESH_HEAD_PREFIXES",
    "ModelHeadError",
    "check_model_path",
    "device",
    "expected_new_weights",
    "load_for_fine_tuning",
    "load_masked_lm",
    "load_tokenizer",
    "model_names",
    "register_model_types",
]


logger = logging.getLogger(__name__)


class ModelHeadError(DataError):
    """The checkpoint lacks what a suite needs (an MLM head, a mask token, a task head class)."""


def register_model_types() -> None:
    """Import `modeling_rexbert` when installed, so `model_type="rexbert"` resolves in Auto classes."""
    try:
        importlib.import_module("modeling_rexbert")
    except ImportError:
        pass


def model_names(model_paths: list[str]) -> list[str]:
    """Short, distinct, path-safe names for checkpoints: the folder name, or more of the path when
    two folders share a name (runs/a/model, runs/b/model -> a--model, b--model); Hub ids keep their
    owner (org--name)."""
    parts = [Path(str(p)).parts for p in model_paths]
    for depth in range(1, max(map(len, parts), default=1) + 1):
        names = ["--".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{name}-{i}" for i, name in enumerate(names)]


def check_model_path(model_path: str | os.PathLike) -> None:
    """A clear error for a local model directory that does not exist (anything shaped like a Hub id,
    `org/name`, is left to `from_pretrained`)."""
    text = str(model_path)
    looks_local = Path(text).is_absolute() or text.startswith(".") or text.count("/") != 1
    if looks_local and not Path(text).is_dir():
        raise ModelHeadError(f"{model_path}: no such model directory")
    if Path(text).is_dir():
        verify_model_dir(text)  # damaged weights are refused by name, not deep inside a loader


def load_tokenizer(model_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer; a fast tokenizer is required (offsets for NER)."""
    check_model_path(model_path)
    register_model_types()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    except (OSError, ValueError) as error:
        raise ModelHeadError(f"{model_path}: no usable tokenizer in the checkpoint ({error})") from error
    if not tokenizer.is_fast:
        raise ModelHeadError(f"{model_path}: the suites need a fast (Rust) tokenizer for character offsets")
    return tokenizer


def load_masked_lm(model_path: str | os.PathLike) -> PreTrainedModel:
    """The checkpoint with its trained masked-LM head, in eval mode.

    Raises `ModelHeadError` when the head weights are missing (e.g. a directory saved from a bare
    encoder or a classifier), since a randomly initialised head would score like chance.
    """
    register_model_types()
    model, info = AutoModelForMaskedLM.from_pretrained(str(model_path), output_loading_info=True)
    missing = [key for key in info["missing_keys"] if not _is_tied_decoder(model, key)]
    if missing:
        raise ModelHeadError(
            f"{model_path}: the checkpoint has no masked-LM head (missing weights {missing[:5]}); "
            "esci-tokens needs a checkpoint saved from a *ForMaskedLM model"
        )
    return model.eval()


def _is_tied_decoder(model: PreTrainedModel, key: str) -> bool:
    """True for a missing output-embedding weight that is tied to the input embeddings anyway."""
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is model.get_input_embeddings().weight
    return (
        tied and key.endswith("weight") and any(key.endswith(f"{n}.weight") for n in ("decoder", "lm_head"))
    )


def load_for_fine_tuning(
    model_path: str | os.PathLike,
    task: str,
    num_labels: int,
    id2label: dict[int, str] | None = None,
    problem_type: str | None = None,
) -> PreTrainedModel:
    """A fresh classification or token-classification head on the pretrained encoder.

    `task` is "sequence" or "token". Raises `ModelHeadError` when the architecture has no such head.
    """
    register_model_types()
    auto = {"sequence": AutoModelForSequenceClassification, "token": AutoModelForTokenClassification}[task]
    config = AutoConfig.from_pretrained(str(model_path))
    if type(config) not in auto._model_mapping:
        raise ModelHeadError(
            f"{model_path}: model_type {config.model_type!r} has no {task}-classification head class "
            f"({auto.__name__} does not support it)"
        )
    kwargs = {"num_labels": num_labels}
    if id2label is not None:
        kwargs.update(id2label=id2label, label2id={label: i for i, label in id2label.items()})
    if problem_type is not None:
        kwargs["problem_type"] = problem_type
    with expected_new_weights():
        model, info = auto.from_pretrained(str(model_path), output_loading_info=True, **kwargs)
    encoder_missing = [key for key in info["missing_keys"] if not key.startswith(FRESH_HEAD_PREFIXES)]
    if encoder_missing:
        logger.warning(
            "%s: encoder weights missing from the checkpoint, initialised at random: %s",
            model_path,
            encoder_missing[:5],
        )
    return model


# A fine-tuning suite puts a fresh head on the encoder; these weights are expected to be new.
FRESH_HEAD_PREFIXES = ("classifier.", "score.", "head.", "pooler.")


@contextlib.contextmanager
def expected_new_weights():
    """Silence transformers' load report while a suite loads a checkpoint into a class whose head is new
    (or whose MLM head is left out): its missing and unexpected keys are the point, not a problem; and
    sentence-transformers' note that a bi-encoder folder (a RexBERT model directory carries a
    sentence-transformers config) becomes a cross-encoder. The callers check what matters themselves."""
    previous = transformers.utils.logging.get_verbosity()
    st_logger = logging.getLogger("sentence_transformers")
    st_previous = st_logger.level
    transformers.utils.logging.set_verbosity_error()
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        transformers.utils.logging.set_verbosity(previous)
        st_logger.setLevel(st_previous)


def device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
