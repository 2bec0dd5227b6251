"""sentence-transformers on a RexBERT directory: the saved configuration gives mean pooling, and the
embeddings equal a masked mean of transformers' ModernBERT hidden states on the same weights."""

from __future__ import annotations

import json
import shutil

import torch
from hub_fixtures import tiny_tokenizer, trained_model_dir
from sentence_transformers import SentenceTransformer
from test_integrations_pipelines import modernbert_reference
from transformers import ModernBertModel

from hub_cards import make_sentence_transformer

TEXTS = ["red leather handbag", "crossbody bag in red leather with a long strap", "great value"]


def test_sentence_transformer_with_saved_mean_pooling(tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained_model_dir(), model_dir)
    weights = (model_dir / "model.safetensors").read_bytes()
    make_sentence_transformer(model_dir, pooling="mean")
    assert (model_dir / "model.safetensors").read_bytes() == weights  # only configuration was added
    modules = json.loads((model_dir / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling"]
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode"] == "mean" and pooling["embedding_dimension"] == 64

    encoder = SentenceTransformer(str(model_dir), device="cpu")
    assert [type(module).__name__ for module in encoder] == ["Transformer", "Pooling"]
    embeddings = encoder.encode(TEXTS, convert_to_tensor=True)

    batch = tiny_tokenizer()(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = modernbert_reference(ModernBertModel, model_dir)(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=1e-4)

    encoder.save(str(tmp_path / "saved"))
    reloaded = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    torch.testing.assert_close(reloaded.encode(TEXTS, convert_to_tensor=True), embeddings)
