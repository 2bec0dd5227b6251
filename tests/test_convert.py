"""`rexbert convert`: ModernBERT dir -> RexBERT dir -> ModernBERT dir, checked against transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer, ModernBertConfig

import modeling_rexbert
from modeling_rexbert.convert import modernbert_to_rexbert, rexbert_to_modernbert
from modeling_rexbert.tokenization import tokenizer_config_kwargs, train_bpe_tokenizer
from rexbert import cli

TEXTS = [
    "wireless earbuds with charging case, 24h battery",
    "stainless steel water bottle 750 ml, keeps drinks cold",
    "the phone case fits well and the buttons work",
    "running shoes for men, breathable mesh, size 10",
] * 20
HEADS = ["ForMaskedLM", "ForSequenceClassification", "ForTokenClassification"]
AUTO_CLASSES = {
    "AutoConfig",
    "AutoModel",
    "AutoModelForMaskedLM",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoModelForQuestionAnswering",
    "AutoModelForMultipleChoice",
}


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(TEXTS, vocab_size=320)


def _modernbert_config(tokenizer, **overrides) -> ModernBertConfig:
    return ModernBertConfig(
        **tokenizer_config_kwargs(tokenizer),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=256,
        local_attention=16,
        attn_implementation="eager",
        **overrides,
    )


def _save_modernbert(tokenizer, path: Path, head: str = "ForMaskedLM", **overrides):
    """A randomly initialised transformers ModernBERT with `head`, saved with its tokenizer."""
    torch.manual_seed(0)
    model = getattr(transformers, "ModernBert" + head)(
        _modernbert_config(tokenizer, num_labels=3, **overrides)
    )
    with torch.no_grad():  # non-zero biases/norms so the comparison sees every tensor
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    model.eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return model


def _batch(tokenizer) -> dict[str, torch.Tensor]:
    """A padded batch longer than the local window, so local and global layers differ."""
    return tokenizer([" ".join(TEXTS[:6]), TEXTS[1], "a [MASK] phone"], padding=True, return_tensors="pt")


def _max_diff(logits: torch.Tensor, expected: torch.Tensor, attention_mask: torch.Tensor) -> float:
    """Largest difference over real tokens (per-token heads) or over the batch (pooled heads);
    what a model puts at padded positions is not part of its output contract."""
    if logits.dim() == 3:
        real = attention_mask.bool()
        logits, expected = logits[real], expected[real]
    return (logits - expected).abs().max().item()


def _state_dicts_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert torch.equal(a[name], b[name]), name


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


@pytest.mark.parametrize("head", HEADS)
def test_round_trip_keeps_outputs_and_weights(head, tokenizer, tmp_path):
    original = _save_modernbert(tokenizer, tmp_path / "modernbert", head)
    batch = _batch(tokenizer)

    rex_dir = modernbert_to_rexbert(tmp_path / "modernbert", tmp_path / "rexbert")
    config = _config(rex_dir)
    assert config["model_type"] == "rexbert" and config["architectures"] == ["RexBert" + head]
    assert set(config["auto_map"]) == AUTO_CLASSES
    assert (rex_dir / "modeling_rexbert.py").is_file() and (rex_dir / "configuration_rexbert.py").is_file()
    assert (rex_dir / "tokenizer.json").is_file()
    assert (
        AutoTokenizer.from_pretrained(rex_dir)("a [MASK] phone").input_ids
        == tokenizer("a [MASK] phone").input_ids
    )

    rexbert = getattr(modeling_rexbert, "RexBert" + head).from_pretrained(rex_dir).eval()
    with torch.no_grad():
        expected = original(**batch).logits
        assert _max_diff(rexbert(**batch).logits, expected, batch["attention_mask"]) <= 1e-5
        if head == "ForMaskedLM":
            auto = AutoModelForMaskedLM.from_pretrained(rex_dir).eval()
            assert type(auto) is modeling_rexbert.RexBertForMaskedLM
            assert _max_diff(auto(**batch).logits, expected, batch["attention_mask"]) <= 1e-5
            # the converted folder is complete: a fill-mask pipeline runs from it alone
            predictions = transformers.pipeline("fill-mask", model=str(rex_dir), top_k=3)("a [MASK] phone")
            assert len(predictions) == 3
            assert all(
                p["sequence"].startswith("a") and p["sequence"].endswith(" phone") for p in predictions
            )

    back_dir = rexbert_to_modernbert(rex_dir, tmp_path / "back")
    config = _config(back_dir)
    assert config["model_type"] == "modernbert" and config["architectures"] == ["ModernBert" + head]
    assert "auto_map" not in config and not list(back_dir.glob("*.py"))
    back = getattr(transformers, "ModernBert" + head).from_pretrained(back_dir)
    _state_dicts_equal(back.state_dict(), original.state_dict())
    if head != "ForMaskedLM":
        assert back.config.num_labels == rexbert.config.num_labels == 3


def test_bfloat16_and_legacy_hub_config(tokenizer, tmp_path):
    """A config in the older Hub layout (global_attn_every_n_layers, rope thetas as top-level
    keys, torch_dtype) converts, and bfloat16 weights stay bfloat16 and bit-identical."""
    src = tmp_path / "legacy"
    original = _save_modernbert(tokenizer, src, global_attn_every_n_layers=2, global_rope_theta=80000.0)
    original.to(torch.bfloat16).save_pretrained(src)
    legacy = {k: v for k, v in _config(src).items() if k not in ("layer_types", "rope_parameters", "dtype")}
    legacy.update(
        global_attn_every_n_layers=2,
        global_rope_theta=80000.0,
        local_rope_theta=10000.0,
        torch_dtype="bfloat16",
        transformers_version="4.48.0",
    )
    (src / "config.json").write_text(json.dumps(legacy))

    rex_dir = modernbert_to_rexbert(src, tmp_path / "rexbert")
    loaded = modeling_rexbert.RexBertConfig.from_pretrained(rex_dir)
    assert loaded.layer_types == original.config.layer_types
    assert loaded.layer_types[:3] == ["full_attention", "sliding_attention", "full_attention"]
    assert loaded.rope_parameters["full_attention"]["rope_theta"] == 80000.0
    weights = load_file(rex_dir / "model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    back = transformers.ModernBertForMaskedLM.from_pretrained(
        rexbert_to_modernbert(rex_dir, tmp_path / "back")
    )
    _state_dicts_equal(back.state_dict(), original.state_dict())


def test_cli_both_directions_and_pickle_flag(tokenizer, tmp_path, capsys):
    original = _save_modernbert(tokenizer, tmp_path / "src", "ForSequenceClassification")
    # a pickled-only checkpoint: refused unless --allow-pickle
    state_dict = load_file(tmp_path / "src" / "model.safetensors")
    torch.save(state_dict, tmp_path / "src" / "pytorch_model.bin")
    (tmp_path / "src" / "model.safetensors").unlink()
    assert cli.main(["convert", str(tmp_path / "src"), str(tmp_path / "rex")]) == 2
    assert "--allow-pickle" in capsys.readouterr().err
    assert not (tmp_path / "rex").exists()

    assert cli.main(["convert", str(tmp_path / "src"), str(tmp_path / "rex"), "--allow-pickle"]) == 0
    assert _config(tmp_path / "rex")["model_type"] == "rexbert"
    assert not list((tmp_path / "rex").glob("*.bin"))
    assert cli.main(["convert", str(tmp_path / "rex"), str(tmp_path / "back"), "--to", "modernbert"]) == 0
    back = transformers.ModernBertForSequenceClassification.from_pretrained(tmp_path / "back")
    _state_dicts_equal(back.state_dict(), original.state_dict())
    # writing into a non-empty directory needs --overwrite
    assert cli.main(["convert", str(tmp_path / "rex"), str(tmp_path / "back")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path / "rex"), str(tmp_path / "back"), "--overwrite"]) == 0


def test_converted_mlm_fine_tunes_through_remote_code(tokenizer, tmp_path):
    """In a process that never imports modeling_rexbert, a converted masked-LM checkpoint loads as
    a sequence classifier with trust_remote_code (auto_map lists every head)."""
    _save_modernbert(tokenizer, tmp_path / "src")
    rex_dir = modernbert_to_rexbert(tmp_path / "src", tmp_path / "rexbert")
    script = (
        "import sys, transformers\n"
        "m = transformers.AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True,"
        " num_labels=2)\n"
        "assert 'modeling_rexbert' not in sys.modules, 'package was imported'\n"
        "print(type(m).__module__, type(m).__name__)\n"
    )
    env = {**os.environ, "PYTHONPATH": "", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(rex_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    module, name = result.stdout.split()
    assert module.startswith("transformers_modules") and name == "RexBertForSequenceClassification"


def test_bad_inputs(tokenizer, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        modernbert_to_rexbert(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        modernbert_to_rexbert(tmp_path / "missing" / "dir", tmp_path / "out")

    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type='bert'"):
        modernbert_to_rexbert(tmp_path / "bert", tmp_path / "out")

    _save_modernbert(tokenizer, tmp_path / "mb")
    with pytest.raises(ValueError, match="already a modernbert"):
        rexbert_to_modernbert(tmp_path / "mb", tmp_path / "out")
    with pytest.raises(ValueError, match="must differ"):
        modernbert_to_rexbert(tmp_path / "mb", tmp_path / "mb", overwrite=True)

    # a head whose tensors are not in the checkpoint is an error, not a random init
    config = _config(tmp_path / "mb")
    (tmp_path / "mb" / "config.json").write_text(
        json.dumps({**config, "architectures": ["ModernBertForSequenceClassification"]})
    )
    with pytest.raises(ValueError, match="does not fit RexBertForSequenceClassification"):
        modernbert_to_rexbert(tmp_path / "mb", tmp_path / "out1")

    (tmp_path / "mb" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights"):
        modernbert_to_rexbert(tmp_path / "mb", tmp_path / "out2")


def test_conversion_copies_sub_folders_and_fits_the_tokenizer(tokenizer, tmp_path):
    """A RexBERT directory with a sentence-transformers configuration, eval results, a trainer checkpoint and a
    link out of the directory: the ModernBERT copy keeps the configuration (pooling folder included) and the
    results, leaves out the checkpoint and the link, and its tokenizer stops where the model's positions do;
    sentence-transformers then loads it with transformers' own classes and encodes as before."""
    from sentence_transformers import SentenceTransformer

    from hub_cards import make_sentence_transformer

    _save_modernbert(tokenizer, tmp_path / "modernbert", "Model")
    rex_dir = modernbert_to_rexbert(tmp_path / "modernbert", tmp_path / "rexbert")
    make_sentence_transformer(rex_dir, pooling="mean")
    (rex_dir / "eval").mkdir()
    (rex_dir / "eval" / "results.json").write_text('{"suites": {}}')
    (rex_dir / "checkpoint-5").mkdir()
    (rex_dir / "checkpoint-5" / "model.safetensors").write_bytes(b"stale")
    (tmp_path / "secret.txt").write_text("not part of the model")
    (rex_dir / "notes.txt").symlink_to(tmp_path / "secret.txt")
    assert json.loads((rex_dir / "tokenizer_config.json").read_text())["model_max_length"] == 256  # fitted
    stale = {**json.loads((rex_dir / "tokenizer_config.json").read_text()), "model_max_length": 8192}
    (rex_dir / "tokenizer_config.json").write_text(json.dumps(stale))  # as saved before this was fixed

    back_dir = rexbert_to_modernbert(rex_dir, tmp_path / "back")
    pooling = json.loads((back_dir / "1_Pooling" / "config.json").read_text())  # the 3.x form
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    for name in (
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "eval/results.json",
    ):
        assert (back_dir / name).is_file(), name
    assert not (back_dir / "checkpoint-5").exists() and not (back_dir / "notes.txt").exists()
    tokenizer_config = json.loads((back_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["model_max_length"] == _config(back_dir)["max_position_embeddings"] == 256
    assert len(AutoTokenizer.from_pretrained(back_dir)("word " * 400, truncation=True).input_ids) == 256

    texts = ["red running shoes", "a phone case that fits well, with buttons that work"]
    converted = SentenceTransformer(str(back_dir), device="cpu")
    assert type(converted[0].auto_model).__name__ == "ModernBertModel"
    original = SentenceTransformer(str(rex_dir), device="cpu")
    torch.testing.assert_close(
        converted.encode(texts, convert_to_tensor=True),
        original.encode(texts, convert_to_tensor=True),
        atol=1e-5,
        rtol=0,
    )
