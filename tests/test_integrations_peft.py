"""PEFT LoRA on RexBERT's classification and token-classification heads: target modules, training,
save, reload and merge give the same outputs."""

from __future__ import annotations

import pytest
import torch
from hub_fixtures import tiny_tokenizer, trained_model_dir
from peft import PeftModel, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from hub_cards import LORA_TARGET_MODULES, lora_config

TEXTS = ["red running shoes, size 10", "the blender broke after a week"]
HEADS = {
    "SEQ_CLS": (AutoModelForSequenceClassification, lambda ids: torch.tensor([1, 0])),
    "TOKEN_CLS": (AutoModelForTokenClassification, lambda ids: torch.where(ids % 3 == 0, 1, 2)),
}


def load_head(auto_class, seed: int):
    torch.manual_seed(seed)  # the new classifier is initialised randomly: the seed makes two loads differ
    return auto_class.from_pretrained(trained_model_dir(), num_labels=3).eval()


@pytest.mark.parametrize("task_type", list(HEADS))
def test_lora_train_save_reload_merge(task_type, tmp_path):
    auto_class, make_labels = HEADS[task_type]
    batch = tiny_tokenizer()(TEXTS, padding=True, return_tensors="pt")
    labels = make_labels(batch["input_ids"])
    if task_type == "TOKEN_CLS":
        labels = labels.masked_fill(batch["attention_mask"] == 0, -100)

    model = get_peft_model(load_head(auto_class, seed=0), lora_config(task_type, r=4))
    lora_layers = {
        name.rsplit(".lora_A", 1)[0].rsplit(".", 1)[-1]
        for name, _ in model.named_modules()
        if name.endswith(".lora_A")
    }
    assert lora_layers == set(LORA_TARGET_MODULES)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or "classifier" in name for name in trainable)
    assert any("classifier" in name for name in trainable)  # the new head trains fully

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):  # enough for LoRA's B matrices to leave zero, so the adapter changes outputs
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        adapted = model(**batch).logits
        base = load_head(auto_class, seed=0)(**batch).logits
    assert not torch.allclose(adapted, base, atol=1e-4)

    model.save_pretrained(tmp_path / "adapter")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in (tmp_path / "adapter").iterdir()
    }
    reloaded = PeftModel.from_pretrained(load_head(auto_class, seed=1), tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, adapted)
        merged = reloaded.merge_and_unload().eval()
        assert not any("lora_" in name for name, _ in merged.named_modules())
        torch.testing.assert_close(merged(**batch).logits, adapted, atol=1e-5, rtol=1e-4)
