"""RexBertConfig: ModernBERT field compatibility, legacy keys, JSON round trips and the size presets."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig, ModernBertConfig

from modeling_rexbert import PRESET_SIZES, PRESETS, RexBertConfig, RexBertForMaskedLM, rexbert_config


def test_defaults_equal_modernbert():
    ours, theirs = RexBertConfig().to_dict(), ModernBertConfig().to_dict()
    assert ours.pop("model_type") == "rexbert"
    assert theirs.pop("model_type") == "modernbert"
    assert ours == theirs
    config = RexBertConfig()
    assert config.local_attention == 128 and config.max_position_embeddings == 8192
    assert config.layer_types[:4] == [
        "full_attention",
        "sliding_attention",
        "sliding_attention",
        "full_attention",
    ]
    assert config.rope_parameters["full_attention"]["rope_theta"] == 160_000.0
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 10_000.0


def test_legacy_modernbert_config_json_loads(tmp_path):
    """A Hub-style ModernBERT config.json (legacy keys, model_type modernbert) loads with its values."""
    legacy = {
        "model_type": "modernbert",
        "architectures": ["ModernBertForMaskedLM"],
        "vocab_size": 50368,
        "hidden_size": 256,
        "intermediate_size": 384,
        "num_hidden_layers": 7,
        "num_attention_heads": 4,
        "global_attn_every_n_layers": 2,
        "global_rope_theta": 80000.0,
        "local_rope_theta": 5000.0,
        "local_attention": 64,
        "classifier_pooling": "mean",
    }
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    config = RexBertConfig.from_pretrained(tmp_path)
    assert config.hidden_size == 256 and config.local_attention == 64 and config.classifier_pooling == "mean"
    assert config.layer_types == ["full_attention", "sliding_attention"] * 3 + ["full_attention"]
    assert config.rope_parameters["full_attention"]["rope_theta"] == 80000.0
    assert config.rope_parameters["sliding_attention"]["rope_theta"] == 5000.0


def test_json_round_trip_and_auto_config(tmp_path):
    import modeling_rexbert  # noqa: F401  (registers model_type "rexbert")

    config = rexbert_config("rexbert-17m", local_attention=64, sparse_prediction=True, num_labels=4)
    config.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "rexbert"
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert type(loaded) is RexBertConfig
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert loaded.to_dict() | {"_name_or_path": ""} == config.to_dict()
    # ModernBERT reads the same file (what `rexbert convert` relies on).
    assert ModernBertConfig.from_dict(loaded.to_dict()).hidden_size == 256


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="rexbert-17m"):
        rexbert_config("rexbert-1b")


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_parameter_count_matches_name(preset):
    """Counting convention: all parameters of RexBertForMaskedLM, tied decoder counted once (embeddings
    included, decoder bias included), within 5% of the number in the name."""
    config = rexbert_config(preset)
    with torch.device("meta"):
        model = RexBertForMaskedLM(config)
    count = model.num_parameters()
    assert abs(count - PRESET_SIZES[preset]) / PRESET_SIZES[preset] < 0.05, count
    assert config.hidden_size // config.num_attention_heads == 64
