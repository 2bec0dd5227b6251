"""transformers pipelines on a RexBERT directory, checked against transformers' own ModernBERT classes
loaded from the same weights (the state-dict names are identical). torch.compile is tested by running the
README's compile snippet (tests/test_hub_readme.py), so the suite pays for one compilation only."""

from __future__ import annotations

import torch
from hub_fixtures import tiny_tokenizer, trained_model_dir
from transformers import ModernBertConfig, ModernBertForMaskedLM, ModernBertModel, pipeline

import modeling_rexbert

TEXTS = ["red running shoes for men", "fast shipping, would buy again"]


def modernbert_reference(model_class, model_dir):
    """transformers' ModernBERT class on the RexBERT checkpoint's weights, eager attention."""
    config = ModernBertConfig.from_dict(ModernBertConfig.get_config_dict(model_dir)[0])
    return model_class.from_pretrained(model_dir, config=config, attn_implementation="eager").eval()


def test_fill_mask_pipeline_matches_modernbert():
    model_dir = trained_model_dir()
    fill = pipeline("fill-mask", model=str(model_dir), top_k=5, device="cpu")
    assert isinstance(fill.model, modeling_rexbert.RexBertForMaskedLM)
    text = "wireless earbuds with [MASK] case"
    predictions = fill(text)
    batch = tiny_tokenizer()(text, return_tensors="pt")
    position = batch["input_ids"][0].tolist().index(tiny_tokenizer().mask_token_id)
    with torch.no_grad():
        logits = modernbert_reference(ModernBertForMaskedLM, model_dir)(**batch).logits[0, position]
    expected = torch.softmax(logits, dim=-1).topk(5)
    assert [p["token"] for p in predictions] == expected.indices.tolist()
    torch.testing.assert_close(
        torch.tensor([p["score"] for p in predictions]), expected.values, atol=1e-5, rtol=0
    )
    assert all(p["sequence"].startswith("wireless earbuds with") for p in predictions)


def test_feature_extraction_pipeline_matches_modernbert():
    model_dir = trained_model_dir()
    extract = pipeline("feature-extraction", model=str(model_dir), device="cpu")
    assert isinstance(extract.model, modeling_rexbert.RexBertModel)
    reference = modernbert_reference(ModernBertModel, model_dir)
    for text in TEXTS:
        features = torch.tensor(extract(text))[0]
        with torch.no_grad():
            expected = reference(**tiny_tokenizer()(text, return_tensors="pt")).last_hidden_state[0]
        assert features.shape == (len(tiny_tokenizer()(text)["input_ids"]), 64)
        torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-4)
