# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""The files of a published ModernBERT-typed directory, in the form every supported client reads the same way.

transformers 5 writes ModernBERT's RoPE settings only as `rope_parameters` + `layer_types`; transformers
before 5 then silently falls back to its default thetas (a phase-1 checkpoint, global theta 10,000, gives
hidden states off by up to 0.38), and text-embeddings-inference refuses the file (its config struct requires
the plain fields). sentence-transformers 6 writes module paths 3.x cannot import, and transformers 5 names a
tokenizer class (`TokenizersBackend`) that older versions do not know. So what `rexbert convert --to
modernbert`, `rexbert push model` and the fine-tuning tasks ship is rewritten here:

- `config.json`: ModernBERT's legacy keys (`global_rope_theta`, `local_rope_theta`,
  `global_attn_every_n_layers`, `local_attention`) next to the new ones, derived from them and checked to say
  the same thing (a layer pattern or RoPE type the legacy keys cannot express is refused, naming it); every
  field text-embeddings-inference's config requires.
- `tokenizer_config.json`: `tokenizer_class: PreTrainedTokenizerFast` (read by every version since 4.0;
  `tokenizer.json` holds the tokenizer), without the machine-local `is_local` / `local_files_only`.
- sentence-transformers: a bi-encoder's `modules.json`, `sentence_bert_config.json`, pooling and Dense
  configs in the `sentence_transformers.models.*` form 3.x wrote and 6.x still reads; a cross-encoder as a
  plain sequence classifier with its activation in `config.json` (where 3.x, 4.x and 5.x look for it) and no
  module files.

The client matrix that reads these files identically is stated in the README ("Where it runs") and checked
by `bench/client_matrix.py`. Only JSON is touched: weights stay as they are.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "LEGACY_ROPE_KEYS",
    "TEI_REQUIRED_FIELDS",
    "ClientFilesError",
    "client_file_problems",
    "client_files",
    "legacy_config",
    "legacy_tokenizer_config",
    "write_client_files",
]

LEGACY_ROPE_KEYS = ("global_rope_theta", "local_rope_theta", "global_attn_every_n_layers", "local_attention")
# text-embeddings-inference's ModernBertConfig (backends/candle/src/models/modernbert.rs): its fields that are
# not `Option`s, so a config.json without any of them is refused by the server.
TEI_REQUIRED_FIELDS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "hidden_activation", "max_position_embeddings", "initializer_range", "initializer_cutoff_factor",
    "norm_eps", "norm_bias", "pad_token_id", "eos_token_id", "bos_token_id", "cls_token_id", "sep_token_id",
    "global_rope_theta", "attention_bias", "attention_dropout", "global_attn_every_n_layers",
    "local_attention", "local_rope_theta", "classifier_activation",
)  # fmt: skip
MACHINE_LOCAL_TOKENIZER_KEYS = ("is_local", "local_files_only")
LEGACY_TOKENIZER_CLASS = "PreTrainedTokenizerFast"
# sentence-transformers 6 module classes -> the path every version since 2.x imports
LEGACY_MODULES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Normalize": "sentence_transformers.models.Normalize",
    "Dense": "sentence_transformers.models.Dense",
}
# sentence-transformers 3.x builds `Dense(**config)` with exactly these keys (it refuses any other); 6.x's
# extra keys are written only when they differ from what 3.x does implicitly.
LEGACY_DENSE_KEYS = ("in_features", "out_features", "bias", "activation_function")
DENSE_IMPLICIT = {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"}
# sentence-transformers 6 `pooling_mode` -> the 3.x flag it sets
POOLING_FLAGS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}
CROSS_ENCODER_MODULE_FILES = ("modules.json", "sentence_bert_config.json")


class ClientFilesError(ValueError):
    """A checkpoint whose settings older clients cannot be told; the message names the field."""


def _legacy_layer_pattern(layer_types: list[str]) -> int:
    """The `global_attn_every_n_layers` that gives `layer_types` (layer i is global when i % n == 0)."""
    for every in range(1, len(layer_types) + 1):
        expected = ["sliding_attention" if i % every else "full_attention" for i in range(len(layer_types))]
        if expected == list(layer_types):
            return every
    raise ClientFilesError(
        f"config.json layer_types {layer_types} is not 'global every n layers from layer 0': clients before "
        "transformers 5 (and text-embeddings-inference) cannot read this layer pattern"
    )


def _theta(config: dict[str, Any], layer_type: str) -> float:
    parameters = (config.get("rope_parameters") or {}).get(layer_type) or {}
    rope_type = parameters.get("rope_type", "default")
    if rope_type != "default":
        raise ClientFilesError(
            f"config.json rope_parameters.{layer_type}.rope_type is {rope_type!r}: clients before transformers 5 "
            "only know the default RoPE and would compute other positions without a warning"
        )
    if "rope_theta" not in parameters:
        raise ClientFilesError(f"config.json rope_parameters.{layer_type} has no rope_theta")
    return float(parameters["rope_theta"])


def legacy_config(config: dict[str, Any]) -> dict[str, Any]:
    """A ModernBERT `config.json` (dict) with the legacy keys derived from `rope_parameters` and `layer_types`
    (replacing any that disagree) and every field text-embeddings-inference requires; checked before it is
    returned. A config without `layer_types` / `rope_parameters` (written by transformers 4) is returned as
    it is, checked."""
    if config.get("model_type") != "modernbert":
        raise ClientFilesError(f"config.json model_type is {config.get('model_type')!r}, not 'modernbert'")
    result = dict(config)
    if "layer_types" in config:
        result["global_attn_every_n_layers"] = _legacy_layer_pattern(config["layer_types"])
    if "rope_parameters" in config:
        result["global_rope_theta"] = _theta(config, "full_attention")
        result["local_rope_theta"] = _theta(config, "sliding_attention")
    result.setdefault("local_attention", 128)
    for name, token in (("cls_token_id", "bos_token_id"), ("sep_token_id", "eos_token_id")):
        if result.get(name) is None and result.get(token) is not None:
            result[name] = result[token]
    problems = _config_problems(result)
    if problems:
        raise ClientFilesError("; ".join(problems))
    return result


def _config_problems(config: dict[str, Any]) -> list[str]:
    """What keeps a ModernBERT config from being read the same by every client."""
    problems = [f"config.json lacks {name}" for name in TEI_REQUIRED_FIELDS if config.get(name) is None]
    if "layer_types" in config and config.get("global_attn_every_n_layers") is not None:
        every = config["global_attn_every_n_layers"]
        pattern = [
            "sliding_attention" if i % every else "full_attention" for i in range(len(config["layer_types"]))
        ]
        if pattern != list(config["layer_types"]):
            problems.append(f"config.json global_attn_every_n_layers {every} disagrees with layer_types")
    for layer_type, key in (
        ("full_attention", "global_rope_theta"),
        ("sliding_attention", "local_rope_theta"),
    ):
        parameters = (config.get("rope_parameters") or {}).get(layer_type)
        if (
            parameters
            and config.get(key) is not None
            and float(parameters.get("rope_theta", -1)) != float(config[key])
        ):
            problems.append(f"config.json {key} {config[key]} disagrees with rope_parameters.{layer_type}")
    return problems


def legacy_tokenizer_config(tokenizer_config: dict[str, Any]) -> dict[str, Any]:
    """`tokenizer_config.json` with a class every transformers version reads and no machine-local keys."""
    result = {k: v for k, v in tokenizer_config.items() if k not in MACHINE_LOCAL_TOKENIZER_KEYS}
    result["tokenizer_class"] = LEGACY_TOKENIZER_CLASS
    return result


def _read(directory: Path, name: str) -> Any:
    path = directory / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _sentence_transformers_kind(directory: Path) -> str | None:
    """ "SentenceTransformer", "CrossEncoder" or None (no sentence-transformers files)."""
    settings = _read(directory, "config_sentence_transformers.json") or {}
    if settings.get("model_type") in ("SentenceTransformer", "CrossEncoder"):
        return settings["model_type"]
    modules = _read(directory, "modules.json")
    if modules is None:
        return None
    task = (_read(directory, "sentence_bert_config.json") or {}).get("transformer_task")
    return "CrossEncoder" if task == "sequence-classification" else "SentenceTransformer"


def _max_seq_length(directory: Path, config: dict[str, Any]) -> int:
    saved = (_read(directory, "sentence_bert_config.json") or {}).get("max_seq_length")
    tokenizer_length = (_read(directory, "tokenizer_config.json") or {}).get("model_max_length")
    positions = int(config.get("max_position_embeddings", 512))
    for length in (saved, tokenizer_length):
        if isinstance(length, int) and 0 < length:
            return min(length, positions)
    return positions


def _legacy_pooling(pooling: dict[str, Any], where: str) -> dict[str, Any]:
    if "word_embedding_dimension" in pooling:
        return pooling  # already the 3.x form
    modes = pooling.get("pooling_mode", "mean")
    modes = [modes] if isinstance(modes, str) else list(modes)
    unknown = [m for m in modes if m not in POOLING_FLAGS]
    if unknown:
        raise ClientFilesError(f"{where}: pooling mode {unknown} has no sentence-transformers 3.x form")
    legacy = {"word_embedding_dimension": pooling["embedding_dimension"]}
    legacy.update({flag: mode in modes for mode, flag in POOLING_FLAGS.items()})
    legacy["include_prompt"] = bool(pooling.get("include_prompt", True))
    return legacy


def _legacy_dense(dense: dict[str, Any], where: str) -> dict[str, Any]:
    """A Dense module's config as 3.x reads it: its four keys, 6.x's input/output names only at the
    `sentence_embedding` 3.x always uses, no residual (3.x has none)."""
    for key, implicit in DENSE_IMPLICIT.items():
        if dense.get(key) not in (None, implicit):
            raise ClientFilesError(
                f"{where}: {key} is {dense[key]!r}; "
                f"sentence-transformers 3.x's Dense reads and writes {implicit!r}"
            )
    if dense.get("use_residual"):
        raise ClientFilesError(
            f"{where}: use_residual is true; sentence-transformers 3.x's Dense has no residual"
        )
    legacy = {key: dense[key] for key in LEGACY_DENSE_KEYS if key in dense}
    legacy.setdefault("bias", True)
    legacy.setdefault("activation_function", "torch.nn.modules.activation.Tanh")  # both versions' default
    return legacy


def _bi_encoder_files(directory: Path, config: dict[str, Any]) -> dict[str, Any]:
    modules = _read(directory, "modules.json")
    files: dict[str, Any] = {}
    legacy_modules = []
    for module in modules:
        name = module["type"].rsplit(".", 1)[-1]
        if name not in LEGACY_MODULES:
            raise ClientFilesError(
                f"{directory / 'modules.json'}: module {module['type']} has no form sentence-transformers 3.x "
                f"reads (supported: {', '.join(LEGACY_MODULES)})"
            )
        legacy_modules.append({**module, "type": LEGACY_MODULES[name]})
        relative = f"{module['path']}/config.json"
        if name == "Pooling":
            files[relative] = _legacy_pooling(_read(directory, relative), str(directory / relative))
        elif name == "Dense":
            files[relative] = _legacy_dense(_read(directory, relative), str(directory / relative))
    files["modules.json"] = legacy_modules
    files["sentence_bert_config.json"] = {
        "max_seq_length": _max_seq_length(directory, config),
        "do_lower_case": False,
    }
    return files


def _cross_encoder_files(directory: Path, config: dict[str, Any]) -> dict[str, Any]:
    """A sequence classifier with the activation where sentence-transformers 3.x
    (`sbert_ce_default_activation_function`) and 4.x-6.x (`sentence_transformers.activation_fn`) find it."""
    settings = _read(directory, "config_sentence_transformers.json") or {}
    default = (
        "torch.nn.modules.activation.Sigmoid"
        if config.get("num_labels", 1) == 1
        else "torch.nn.modules.linear.Identity"
    )
    activation = (
        (config.get("sentence_transformers") or {}).get("activation_fn")
        or settings.get("activation_fn")
        or default
    )
    version = (settings.get("__version__") or {}).get("sentence_transformers")
    files: dict[str, Any] = {
        name: None for name in CROSS_ENCODER_MODULE_FILES if (directory / name).is_file()
    }
    files["config.json"] = {
        **config,
        "sentence_transformers": {"activation_fn": activation, **({"version": version} if version else {})},
        "sbert_ce_default_activation_function": activation,
    }
    return files


def client_files(
    directory: str | Path,
    config: dict[str, Any] | None = None,
    tokenizer_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The rewrites that make the ModernBERT-typed `directory` readable by every supported client: relative
    path -> new JSON content, or None for a file to delete. `config` / `tokenizer_config`: the contents to
    publish instead of the directory's files (a push that renames a RexBERT config)."""
    directory = Path(directory)
    config = legacy_config(config if config is not None else _read(directory, "config.json"))
    files: dict[str, Any] = {"config.json": config}
    if tokenizer_config is None:
        tokenizer_config = _read(directory, "tokenizer_config.json")
    if tokenizer_config is not None:
        files["tokenizer_config.json"] = legacy_tokenizer_config(tokenizer_config)
    kind = _sentence_transformers_kind(directory)
    if kind == "SentenceTransformer":
        files.update(_bi_encoder_files(directory, config))
    elif kind == "CrossEncoder":
        files.update(_cross_encoder_files(directory, config))
    return files


def _atomic_write_json(path: Path, content: Any) -> None:
    """Write-then-rename, here rather than `rexbert_core.safe_outputs`: this package ships as Hub remote code
    and imports only torch and transformers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    os.replace(scratch, path)


def write_client_files(directory: str | Path) -> list[str]:
    """Rewrite `directory` in place (see `client_files`); returns the paths changed. Checked after writing."""
    directory = Path(directory)
    changed = []
    for relative, content in client_files(directory).items():
        path = directory / relative
        if content is None:
            path.unlink()
        elif _read(directory, relative) != content:
            _atomic_write_json(path, content)
        else:
            continue
        changed.append(relative)
    problems = client_file_problems(directory)
    if problems:
        raise ClientFilesError(f"{directory}: " + "; ".join(problems))
    return changed


def client_file_problems(directory: str | Path) -> list[str]:
    """What in `directory` a supported client would read differently or refuse (empty: nothing)."""
    directory = Path(directory)
    config = _read(directory, "config.json") or {}
    problems = _config_problems(config)
    tokenizer_config = _read(directory, "tokenizer_config.json") or {}
    if tokenizer_config and tokenizer_config.get("tokenizer_class") != LEGACY_TOKENIZER_CLASS:
        problems.append(
            f"tokenizer_config.json tokenizer_class is {tokenizer_config.get('tokenizer_class')!r}"
        )
    problems += [
        f"tokenizer_config.json holds {k}" for k in MACHINE_LOCAL_TOKENIZER_KEYS if k in tokenizer_config
    ]
    for module in _read(directory, "modules.json") or []:
        if module["type"] not in LEGACY_MODULES.values():
            problems.append(
                f"modules.json names {module['type']}, which sentence-transformers 3.x cannot import"
            )
    return problems
