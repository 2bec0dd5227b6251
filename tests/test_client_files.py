"""The published ModernBERT-typed directory in the form every supported client reads the same way
(`modeling_rexbert/client_files.py`): the written files against each client's required fields (transformers
before 5, text-embeddings-inference's config struct, sentence-transformers 3.x module paths and configs), the
installed clients (transformers 5.23, sentence-transformers 6.2) loading the rewritten files identically, and
settings the legacy form cannot express refused by name. `bench/client_matrix.py` runs the other client
versions in their own environments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from transformers import AutoModel, AutoTokenizer, ModernBertConfig

from modeling_rexbert.client_files import (
    TEI_REQUIRED_FIELDS,
    ClientFilesError,
    client_file_problems,
    legacy_config,
    write_client_files,
)
from modeling_rexbert.convert import modernbert_to_rexbert, rexbert_to_modernbert
from modeling_rexbert.tokenization import tokenizer_config_kwargs, train_bpe_tokenizer

TEXTS = [
    "wireless earbuds with charging case, 24h battery",
    "stainless steel water bottle 750 ml, keeps drinks cold",
    "running shoes for men, breathable mesh, size 10",
] * 20
# A phase-1 checkpoint: global theta 10,000 (not transformers' default 160,000), global every 2 layers.
PHASE_ONE = {
    "rope_parameters": {
        "full_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    },
    "layer_types": ["full_attention", "sliding_attention", "full_attention", "sliding_attention"],
}
# What sentence-transformers 3.x's Transformer and Pooling accept from their config files.
ST3_TRANSFORMER_KEYS = {"max_seq_length", "do_lower_case"}
ST3_POOLING_KEYS = {
    "word_embedding_dimension", "pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken",
    "include_prompt",
}  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(TEXTS, vocab_size=320)


def _published(tokenizer, root: Path, head: str = "Model", **config) -> Path:
    """A random transformers ModernBERT (`head`) saved by transformers 5, converted to RexBERT and published
    back as ModernBERT by `rexbert convert`."""
    torch.manual_seed(0)
    settings = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4)
    settings.update(max_position_embeddings=256, local_attention=16, num_labels=1, **config)
    model = getattr(transformers, "ModernBert" + head)(
        ModernBertConfig(**tokenizer_config_kwargs(tokenizer), **settings)
    )
    with torch.no_grad():  # weights large enough that attention is far from uniform and positions matter
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    model.eval().save_pretrained(root / "saved")
    tokenizer.save_pretrained(root / "saved")
    modernbert_to_rexbert(root / "saved", root / "rexbert")
    return rexbert_to_modernbert(root / "rexbert", root / "published")


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _hidden(directory: Path, batch) -> torch.Tensor:
    model = AutoModel.from_pretrained(directory).eval()
    with torch.no_grad():
        return model(**batch).last_hidden_state


def test_config_carries_the_legacy_keys_every_client_needs(tokenizer, tmp_path):
    published = _published(tokenizer, tmp_path, **PHASE_ONE)
    config = _read(published / "config.json")
    assert config["global_rope_theta"] == config["local_rope_theta"] == 10_000.0
    assert config["global_attn_every_n_layers"] == 2 and config["local_attention"] == 16
    assert [name for name in TEI_REQUIRED_FIELDS if config.get(name) is None] == []
    tokenizer_config = _read(published / "tokenizer_config.json")
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "is_local" not in tokenizer_config and "local_files_only" not in tokenizer_config
    assert client_file_problems(published) == []


def test_a_client_reading_only_the_legacy_keys_computes_the_same_states(tokenizer, tmp_path):
    """transformers before 5 reads only the legacy keys: transformers 5's own reading of a config that has
    nothing else (its backward-compatible path) gives the phase-1 model's states, where the new keys alone
    read by such a client (here: left out) give other states."""
    published = _published(tokenizer, tmp_path, **PHASE_ONE)
    batch = AutoTokenizer.from_pretrained(published)(
        [" ".join(TEXTS[:4]), TEXTS[1]], padding=True, return_tensors="pt"
    )
    expected = _hidden(published, batch)
    legacy_only, new_only = tmp_path / "legacy_only", tmp_path / "new_only"
    for target, dropped in ((legacy_only, ("rope_parameters", "layer_types")), (new_only, ("global_rope_theta", "local_rope_theta", "global_attn_every_n_layers", "rope_parameters"))):  # fmt: skip
        shutil.copytree(published, target)
        config = {k: v for k, v in _read(published / "config.json").items() if k not in dropped}
        (target / "config.json").write_text(json.dumps(config))
    keep = batch["attention_mask"].bool()
    assert (_hidden(legacy_only, batch) - expected)[keep].abs().max().item() <= 1e-5
    assert (_hidden(new_only, batch) - expected)[keep].abs().max().item() > 1e-2  # default thetas differ


def test_legacy_keys_that_disagree_are_rewritten_and_checked(tokenizer, tmp_path):
    published = _published(tokenizer, tmp_path, **PHASE_ONE)
    config = _read(published / "config.json")
    (published / "config.json").write_text(json.dumps({**config, "global_rope_theta": 160_000.0}))
    assert "global_rope_theta 160000.0 disagrees with rope_parameters.full_attention" in " ".join(
        client_file_problems(published)
    )
    assert "config.json" in write_client_files(published)
    assert _read(published / "config.json")["global_rope_theta"] == 10_000.0 and not client_file_problems(
        published
    )


def test_settings_older_clients_cannot_read_are_refused_by_name():
    base = {"model_type": "modernbert", "num_hidden_layers": 3, "local_attention": 16}
    irregular = {**base, "layer_types": ["full_attention", "full_attention", "sliding_attention"]}
    with pytest.raises(ClientFilesError, match="layer_types .* cannot read this layer pattern"):
        legacy_config(irregular)
    scaled = {
        **base,
        "layer_types": ["full_attention", "sliding_attention", "sliding_attention"],
        "rope_parameters": {
            "full_attention": {"rope_type": "yarn", "rope_theta": 160_000.0, "factor": 2.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
    }
    with pytest.raises(ClientFilesError, match="rope_parameters.full_attention.rope_type is 'yarn'"):
        legacy_config(scaled)
    with pytest.raises(ClientFilesError, match="lacks cls_token_id"):
        legacy_config({**base, "layer_types": scaled["layer_types"], "rope_parameters": {
            "full_attention": {"rope_theta": 1.0}, "sliding_attention": {"rope_theta": 1.0}}})  # fmt: skip


def test_a_bi_encoder_is_written_in_the_sentence_transformers_3_form_and_encodes_the_same(
    tokenizer, tmp_path
):
    from sentence_transformers import SentenceTransformer

    from hub_cards import make_sentence_transformer

    published = _published(tokenizer, tmp_path)
    rexbert_dir = tmp_path / "rexbert"
    make_sentence_transformer(rexbert_dir, pooling="mean", max_seq_length=64)  # sentence-transformers 6 files
    written = rexbert_to_modernbert(rexbert_dir, tmp_path / "bi_encoder")
    modules = _read(written / "modules.json")
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
    ]
    assert set(_read(written / "sentence_bert_config.json")) <= ST3_TRANSFORMER_KEYS
    assert _read(written / "sentence_bert_config.json")["max_seq_length"] == 64
    pooling = _read(written / "1_Pooling" / "config.json")
    assert (
        set(pooling) <= ST3_POOLING_KEYS
        and pooling["pooling_mode_mean_tokens"]
        and pooling["word_embedding_dimension"] == 64
    )
    original = SentenceTransformer(str(rexbert_dir), device="cpu")
    shipped = SentenceTransformer(str(written), device="cpu")
    assert shipped.max_seq_length == original.max_seq_length == 64
    texts = [" ".join(TEXTS[:5]), "running shoes"]
    torch.testing.assert_close(shipped.encode(texts, convert_to_tensor=True), original.encode(texts, convert_to_tensor=True), atol=1e-5, rtol=0)  # fmt: skip
    assert published.is_dir()


def _bi_encoder_with_dense(tokenizer, root: Path, **dense) -> Path:
    """A RexBERT bi-encoder saved by sentence-transformers 6 with a Dense projection (64 -> 32) after pooling."""
    from sentence_transformers import SentenceTransformer, models

    from hub_cards import make_sentence_transformer

    _published(tokenizer, root)
    make_sentence_transformer(root / "rexbert", pooling="mean", max_seq_length=64)
    model = SentenceTransformer(str(root / "rexbert"), device="cpu")
    torch.manual_seed(1)
    model.append(models.Dense(64, 32, activation_function=torch.nn.Tanh(), **dense))
    model.save(str(root / "with_dense"))
    return root / "with_dense"


def test_a_dense_module_is_written_in_the_form_sentence_transformers_3_reads(tokenizer, tmp_path):
    from sentence_transformers import SentenceTransformer

    source = _bi_encoder_with_dense(tokenizer, tmp_path)
    written = rexbert_to_modernbert(source, tmp_path / "bi_encoder")
    modules = _read(written / "modules.json")
    assert modules[-1]["type"] == "sentence_transformers.models.Dense"
    dense = _read(written / modules[-1]["path"] / "config.json")
    assert dense == {
        "in_features": 64,
        "out_features": 32,
        "bias": True,
        "activation_function": "torch.nn.modules.activation.Tanh",
    }  # fmt: skip (exactly what 3.x's `Dense(**config)` accepts)
    assert (written / modules[-1]["path"] / "model.safetensors").is_file()  # 3.x reads its weights there
    texts = [" ".join(TEXTS[:5]), "running shoes"]
    original = SentenceTransformer(str(source), device="cpu").encode(texts, convert_to_tensor=True)
    shipped = SentenceTransformer(str(written), device="cpu").encode(texts, convert_to_tensor=True)
    assert shipped.shape == (2, 32)
    torch.testing.assert_close(shipped, original, atol=1e-5, rtol=0)


def test_a_dense_module_3_cannot_express_is_refused_before_anything_is_written(tokenizer, tmp_path):
    source = _bi_encoder_with_dense(tokenizer, tmp_path, use_residual=True)
    with pytest.raises(ClientFilesError, match="use_residual is true"):
        rexbert_to_modernbert(source, tmp_path / "bi_encoder")
    assert not (tmp_path / "bi_encoder").exists()


def test_a_cross_encoder_is_a_plain_classifier_with_its_activation_in_config(tokenizer, tmp_path):
    from sentence_transformers.cross_encoder import CrossEncoder

    _published(tokenizer, tmp_path / "encoder")
    model = CrossEncoder(str(tmp_path / "encoder" / "published"), num_labels=1, device="cpu")
    model.save(str(tmp_path / "saved"))  # sentence-transformers 6's files: modules.json and friends
    assert (tmp_path / "saved" / "modules.json").is_file()
    shutil.copytree(tmp_path / "saved", tmp_path / "shipped")
    write_client_files(tmp_path / "shipped")
    shipped = tmp_path / "shipped"
    assert not (shipped / "modules.json").exists() and not (shipped / "sentence_bert_config.json").exists()
    config = _read(shipped / "config.json")
    sigmoid = "torch.nn.modules.activation.Sigmoid"
    assert (
        config["sentence_transformers"]["activation_fn"]
        == config["sbert_ce_default_activation_function"]
        == sigmoid
    )
    pairs = [("kettle", "stainless steel kettle"), ("earbuds", " ".join(TEXTS[:4]))]
    want = CrossEncoder(str(tmp_path / "saved"), device="cpu").predict(pairs)
    got = CrossEncoder(str(shipped), device="cpu").predict(pairs)
    assert abs(got - want).max() <= 1e-6
