"""A classification head on a RexBERT checkpoint fine-tuned with transformers' Trainer on SST-2 rows."""

from __future__ import annotations

import torch
from datasets import load_dataset
from hub_fixtures import SESSION_DIR, tiny_tokenizer, trained_model_dir
from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

import modeling_rexbert


def test_trainer_fine_tunes_sequence_classification_on_sst2(shared_data, tmp_path):
    rows = load_dataset(
        "csv",
        data_files=str(shared_data / "glue" / "SST-2" / "dev.tsv"),
        delimiter="\t",
        split="train[:16]",
        cache_dir=str(SESSION_DIR / "datasets-cache"),
    )
    tokenizer = tiny_tokenizer()
    train = rows.map(lambda batch: tokenizer(batch["sentence"], truncation=True, max_length=64), batched=True)
    train = train.rename_column("label", "labels").remove_columns(["sentence"])
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(trained_model_dir(), num_labels=2)
    assert isinstance(model, modeling_rexbert.RexBertForSequenceClassification)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=12,
        per_device_train_batch_size=16,
        lr_scheduler_type="constant",
        learning_rate=5e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_pin_memory=False,
        seed=0,
        disable_tqdm=True,
        logging_steps=4,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=train, eval_dataset=train, processing_class=tokenizer
    )
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.5 * before  # it fits the rows it saw
    trainer.save_model(str(tmp_path / "sst2"))
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "sst2").eval()
    batch = tokenizer(["a gorgeous, witty film"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, trainer.model.eval()(**batch).logits)
