# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""Convert checkpoint directories between ModernBERT (`model_type: modernbert`) and RexBERT.

Both architectures use the same state-dict names, so a conversion loads the weights into the
target family's class for the checkpoint's head (read from `architectures`: masked LM, sequence
or token classification, QA, multiple choice, or the bare encoder) and saves it again:

- to RexBERT: `config.json` gets `model_type: rexbert`, `RexBert*` architectures and (written by
  the RexBERT classes' `save_pretrained`) an `auto_map` for every Auto class, with the remote-code
  files next to it, so the directory loads with `trust_remote_code=True` where this package is not
  installed, under any head (a converted masked-LM checkpoint fine-tunes as a classifier).
- to ModernBERT: `model_type: modernbert`, `ModernBert*` architectures, no `auto_map` and no
  remote-code files; transformers loads the result with its own ModernBERT classes. The JSON files are then
  written in the form every supported client reads the same way (`client_files`: legacy RoPE keys, an older
  tokenizer class, sentence-transformers 3.x module paths).

Weights are read from safetensors and written as safetensors. A directory that only has
`pytorch_model.bin` is converted only with `allow_pickle=True` (`--allow-pickle`), which loads it
with `torch.load(weights_only=True)`. Loading goes through `from_pretrained(output_loading_info=True)`
and any missing, unexpected or mismatched tensor is an error, so a conversion never hands back
randomly initialised weights. The checkpoint's dtype is kept. Every other file of the source
(tokenizer files, README, sentence-transformers configs and their `1_Pooling/` folder, eval results, ...)
is copied, sub-folders included; trainer checkpoints, links out of the directory and the source family's
Python files are not (they are listed in the log). The tokenizer's `model_max_length` is capped at the
model's `max_position_embeddings`.

Command line (the direction defaults to the other family than the source's):

    rexbert convert SRC DST [--to {rexbert,modernbert}] [--allow-pickle] [--overwrite]

SRC may also be a Hub repo id, which is downloaded first (safetensors only unless --allow-pickle).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import transformers

from .client_files import client_files, write_client_files
from .configuration_rexbert import FAMILY_PREFIXES

logger = logging.getLogger(__name__)

FAMILIES = FAMILY_PREFIXES  # model_type -> class-name prefix
LEFT_OUT_FOLDERS = ("checkpoint-*", "runs", "wandb", "__pycache__", ".*")
"""Sub-folders a conversion does not copy: trainer checkpoints and logs (heavy, tied to the source run)."""

WEIGHT_SUFFIXES = (
    ".safetensors",
    ".safetensors.index.json",
    ".bin",
    ".bin.index.json",
    ".pt",
    ".pth",
    ".ckpt",
)


class ConversionError(ValueError):
    """A checkpoint that cannot be converted as asked; the message names the directory and the problem."""


HUB_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _family_classes(model_type: str) -> tuple[type, Any]:
    """(config class, namespace holding the model classes) of a family."""
    if model_type == "rexbert":
        import modeling_rexbert

        return modeling_rexbert.RexBertConfig, modeling_rexbert
    return transformers.ModernBertConfig, transformers


def _read_config(src: Path) -> dict[str, Any]:
    config_path = src / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{src} has no config.json; is it a model checkpoint directory?")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") not in FAMILIES:
        raise ConversionError(
            f"{config_path} has model_type={config.get('model_type')!r}; only {sorted(FAMILIES)} checkpoints convert"
        )
    return config


def _check_weights(src: Path, allow_pickle: bool) -> bool:
    """Whether to load safetensors (True) or a pickled `.bin` (False, only when allowed)."""
    if any(src.glob("*.safetensors")):
        return True
    pickled = sorted(p.name for p in src.glob("pytorch_model*.bin"))
    if pickled and allow_pickle:
        return False
    if pickled:
        raise ConversionError(
            f"{src} has only pickled weights ({', '.join(pickled)}); pass --allow-pickle (allow_pickle=True) to "
            "load them with torch.load(weights_only=True) if you trust the source"
        )
    raise FileNotFoundError(f"{src} has a config.json but no weights (*.safetensors or pytorch_model.bin)")


def _target_class_name(architecture: str, source_type: str, target_type: str) -> str:
    """`ModernBertForMaskedLM` -> `RexBertForMaskedLM` and back."""
    source_prefix, target_prefix = FAMILIES[source_type], FAMILIES[target_type]
    if not architecture.startswith(source_prefix):
        raise ConversionError(f"architecture {architecture!r} is not a {source_prefix} class")
    return target_prefix + architecture[len(source_prefix) :]


def _load_as(src: Path, source_config: dict[str, Any], target_type: str, use_safetensors: bool):
    """Load the checkpoint into the target family's class for its head, checking every tensor."""
    config_class, classes = _family_classes(target_type)
    architectures = source_config.get("architectures") or [FAMILIES[source_config["model_type"]] + "Model"]
    class_name = _target_class_name(architectures[0], source_config["model_type"], target_type)
    model_class = getattr(classes, class_name, None)
    if model_class is None:
        raise ConversionError(f"no {class_name} to load the {architectures[0]} checkpoint into")
    fields = {k: v for k, v in source_config.items() if k not in ("model_type", "architectures", "auto_map")}
    config = config_class.from_dict(fields)
    model, info = model_class.from_pretrained(
        src,
        config=config,
        dtype="auto",
        use_safetensors=use_safetensors,
        weights_only=True,
        output_loading_info=True,
    )
    problems = {
        k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v
    }
    if problems:
        raise ConversionError(f"{src} does not fit {class_name}: {problems}")
    return model


def _resolve_source(src: str | Path, allow_pickle: bool) -> Path:
    """A local directory, or a Hub repo id downloaded to the cache (weights as safetensors only
    unless pickles are allowed)."""
    path = Path(src)
    if path.is_dir():
        return path
    if not HUB_REPO_ID.match(str(src)):
        raise FileNotFoundError(f"{src} is not a directory")
    from huggingface_hub import snapshot_download

    ignore = None if allow_pickle else ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl"]
    try:
        return Path(snapshot_download(str(src), ignore_patterns=ignore))
    except Exception as error:  # offline, missing repo, no access: all reported the same way
        raise FileNotFoundError(
            f"{src} is not a directory and could not be downloaded from the Hub: {error}"
        ) from error


def _prepare_destination(dst: Path, overwrite: bool) -> None:
    if dst.exists() and any(dst.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{dst} exists and is not empty; pass --overwrite (overwrite=True) to write into it"
        )
    dst.mkdir(parents=True, exist_ok=True)


def _copy_other_files(src: Path, dst: Path) -> list[str]:
    """Copy everything but config, top-level weights and Python code, sub-folders included (a
    sentence-transformers `1_Pooling/`, `eval/`, ...); return what was copied. Code is left out because it
    is remote code of the source family: `save_pretrained` writes the target's own (RexBERT) or none
    (ModernBERT). Links that lead out of the source directory are refused, trainer checkpoints left out."""
    copied, skipped = [], []
    inside = src.resolve()
    for entry in sorted(src.rglob("*")):
        relative = entry.relative_to(src)
        if any(
            fnmatch.fnmatch(part, pattern) for part in relative.parts[:-1] for pattern in LEFT_OUT_FOLDERS
        ):
            continue
        if not entry.resolve().is_relative_to(inside):  # never follow a link out of the source directory
            logger.warning("refused %s: a link to %s, outside %s", relative, entry.resolve(), src)
            skipped.append(f"{relative} (link outside)")
        elif entry.is_dir():
            if any(fnmatch.fnmatch(entry.name, pattern) for pattern in LEFT_OUT_FOLDERS):
                skipped.append(f"{relative}/")
        elif len(relative.parts) == 1 and (
            entry.suffix == ".py" or entry.name == "config.json" or entry.name.endswith(WEIGHT_SUFFIXES)
        ):
            if entry.suffix == ".py":
                skipped.append(entry.name)
        else:
            (dst / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, dst / relative)
            copied.append(relative.as_posix())
    if skipped:
        logger.info("not copied: %s", ", ".join(skipped))
    return copied


def _fit_tokenizer_config(dst: Path, max_positions: int, target_type: str) -> None:
    """The copied `tokenizer_config.json` with `model_max_length` at most the model's positions (so
    `truncation=True` cuts where the model ends; a shorter length it was saved with, such as a
    sentence-transformers model's `max_seq_length`, is kept) and, for ModernBERT, no `auto_map`."""
    path = dst / "tokenizer_config.json"
    if not path.is_file():
        return
    tokenizer_config = json.loads(path.read_text(encoding="utf-8"))
    saved = tokenizer_config.get("model_max_length")
    tokenizer_config["model_max_length"] = (
        min(saved, max_positions) if isinstance(saved, int) else max_positions
    )
    if target_type == "modernbert":
        tokenizer_config.pop("auto_map", None)
    path.write_text(json.dumps(tokenizer_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert(
    src_dir: str | Path,
    dst_dir: str | Path,
    to: str | None = None,
    *,
    allow_pickle: bool = False,
    overwrite: bool = False,
) -> Path:
    """Convert the checkpoint in `src_dir` to the family `to` ("rexbert" or "modernbert"; None: the
    other family than the source's) and write it to `dst_dir`, which is returned."""
    src = _resolve_source(src_dir, allow_pickle)
    dst = Path(dst_dir)
    source_config = _read_config(src)
    source_type = source_config["model_type"]
    target_type = to or next(family for family in FAMILIES if family != source_type)
    if target_type not in FAMILIES:
        raise ConversionError(f"cannot convert to {target_type!r}; choose one of {sorted(FAMILIES)}")
    if target_type == source_type:
        raise ConversionError(f"{src} is already a {source_type} checkpoint")
    use_safetensors = _check_weights(src, allow_pickle)
    if dst.resolve() == src.resolve():
        raise ConversionError("the destination must differ from the source directory")
    model = _load_as(src, source_config, target_type, use_safetensors)
    if target_type == "modernbert":  # what older clients cannot read is refused before anything is written
        client_files(src, model.config.to_dict())
    _prepare_destination(dst, overwrite)
    copied = _copy_other_files(src, dst)
    _fit_tokenizer_config(dst, model.config.max_position_embeddings, target_type)
    model.save_pretrained(dst)  # RexBERT classes add the remote code and the auto_map
    if target_type == "modernbert":
        write_client_files(dst)
    logger.info(
        "converted %s (%s) -> %s (%s); also copied %s",
        src,
        source_type,
        dst,
        target_type,
        copied or "nothing",
    )
    return dst


def modernbert_to_rexbert(src_dir: str | Path, dst_dir: str | Path, **options: bool) -> Path:
    """Convert a ModernBERT checkpoint directory (or Hub repo id) into a RexBERT one."""
    return convert(src_dir, dst_dir, "rexbert", **options)


def rexbert_to_modernbert(src_dir: str | Path, dst_dir: str | Path, **options: bool) -> Path:
    """Convert a RexBERT checkpoint directory into one transformers' ModernBERT classes load."""
    return convert(src_dir, dst_dir, "modernbert", **options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `rexbert convert`."""
    parser.description = "Convert a checkpoint directory between ModernBERT and RexBERT (same weights)."
    parser.add_argument("src", help="source checkpoint directory (or Hub repo id)")
    parser.add_argument("dst", help="output directory")
    parser.add_argument(
        "--to",
        choices=sorted(FAMILIES),
        default=None,
        help="target family (default: the other one than the source's)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pytorch_model.bin weights (loaded with torch.load(weights_only=True)); only for trusted sources",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output directory")


def main(args: argparse.Namespace) -> int:
    """Run `rexbert convert`; bad directories raise `ConversionError` / `FileNotFoundError` naming them."""
    dst = convert(args.src, args.dst, args.to, allow_pickle=args.allow_pickle, overwrite=args.overwrite)
    print(dst)
    return 0


__all__ = [
    "ConversionError",
    "add_arguments",
    "convert",
    "main",
    "modernbert_to_rexbert",
    "rexbert_to_modernbert",
]
