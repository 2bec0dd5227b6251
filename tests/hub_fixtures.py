"""Tiny checkpoints and run records for the hub/integration tests (built locally, nothing downloaded).

`tiny_tokenizer()` trains the project's small BPE on product-like sentences; `save_tiny_model(dir, head)`
saves a 3-layer, 64-wide model of the requested head with that tokenizer; `trained_model_dir()` trains
one for three short MLM phases with transformers' Trainer and writes its `training_summary.json`;
`write_run_records(dir)` writes a summary and a `results.json` in the shapes the trainers and eval
suites write. Directories are built once per test session (cached) under a temporary folder.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import torch

from hub_cards.model_card import flatten_metrics

SESSION_DIR = Path(tempfile.mkdtemp(prefix="rexbert-hub-tests-"))
atexit.register(shutil.rmtree, SESSION_DIR, ignore_errors=True)

SENTENCES = [
    "red running shoes for men, breathable mesh, size 10",
    "wireless earbuds with charging case and 30 hours of battery",
    "great product, fast shipping, would buy again",
    "the blender is loud but crushes ice in seconds",
    "stainless steel water bottle keeps drinks cold for 24 hours",
    "this phone case cracked after a week",
    "organic cotton t-shirt in navy blue, relaxed fit",
    "the museum opened a new exhibition about river trade",
]


@lru_cache(maxsize=1)
def tiny_tokenizer():
    """A byte-level BPE with ModernBERT's specials, trained on `SENTENCES` (vocabulary padded to 320)."""
    from modeling_rexbert.tokenization import train_bpe_tokenizer

    return train_bpe_tokenizer(SENTENCES * 4, vocab_size=300, model_max_length=128)


def tiny_config(**overrides):
    """A 3-layer RexBERT config that agrees with `tiny_tokenizer()`."""
    from tests.model_helpers import config_for_tokenizer

    fields = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4)
    return config_for_tokenizer(tiny_tokenizer(), **{**fields, **overrides})


def save_tiny_model(path: str | Path, head: str = "masked-lm", seed: int = 0, **config_overrides) -> Path:
    """Save a randomly initialised tiny RexBERT with `head` ("masked-lm", "base", "sequence-classification",
    "token-classification") and the tiny tokenizer to `path`; returns the path."""
    import modeling_rexbert

    classes = {
        "masked-lm": modeling_rexbert.RexBertForMaskedLM,
        "base": modeling_rexbert.RexBertModel,
        "sequence-classification": modeling_rexbert.RexBertForSequenceClassification,
        "token-classification": modeling_rexbert.RexBertForTokenClassification,
    }
    torch.manual_seed(seed)
    model = classes[head](tiny_config(**config_overrides)).eval()
    path = Path(path)
    model.save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


TRAINING_SUMMARY = {
    "preset": "tiny-test",
    "config": {"hidden_size": 64, "num_hidden_layers": 3},
    "phases": [
        {
            "phase": 1,
            "name": "pretrain",
            "steps": 40,
            "tokens": 81920,
            "seq_len": 128,
            "mask_rate": 0.3,
            "lr_schedule": "warmup-stable",
            "peak_lr": 8e-4,
            "mixture": {
                "start": {"general": 0.6, "listing": 0.2, "review": 0.2},
                "end": {"general": 0.6, "listing": 0.2, "review": 0.2},
            },
            "guided_mlm": False,
            "final_loss": 5.91,
            "checkpoint": "phase1",
        },
        {
            "phase": 2,
            "name": "context-extension",
            "steps": 20,
            "tokens": 40960,
            "seq_len": 256,
            "mask_rate": [0.3, 0.15],
            "lr_schedule": "stable",
            "peak_lr": 4e-4,
            "mixture": {
                "start": {"general": 0.5, "listing": 0.25, "review": 0.25},
                "end": {"general": 0.3, "listing": 0.4, "review": 0.3},
            },
            "guided_mlm": False,
            "final_loss": 5.42,
            "checkpoint": "phase2",
        },
        {
            "phase": 3,
            "name": "domain-annealing",
            "steps": 20,
            "tokens": 40960,
            "seq_len": 256,
            "mask_rate": 0.15,
            "lr_schedule": "1-sqrt decay",
            "peak_lr": 4e-4,
            "mixture": {
                "start": {"general": 0.3, "listing": 0.4, "review": 0.3},
                "end": {"general": 0.1, "listing": 0.5, "review": 0.4},
            },
            "guided_mlm": 0.5,
            "final_loss": 5.13,
            "checkpoint": "phase3",
        },
    ],
}

RESULTS = {
    "model": "runs/tiny/pretrain",
    "created": "2026-11-21T06:00:00+00:00",
    "suites": {
        "esci-classification": {
            "task_type": "text-classification",
            "dataset": {"name": "ESCI relevance", "type": "esci", "split": "test"},
            "metrics": {"accuracy": 0.6125, "macro_f1": 0.4871},
            "main_metric": "macro_f1",
            "n_examples": 80,
            "seconds": 1.5,
            "config": {"epochs": 1},
        },
        "esci-similarity": {
            "task_type": "sentence-similarity",
            "dataset": {"name": "ESCI query-product", "type": "esci", "split": "test"},
            "metrics": {"spearman": 0.2311, "ndcg@10": 0.7032},
            "main_metric": "ndcg@10",
            "n_examples": 60,
            "seconds": 0.8,
            "config": {},
        },
        "glue": {
            "task_type": "text-classification",
            "dataset": {"name": "GLUE", "type": "nyu-mll/glue", "split": "validation"},
            "metrics": {
                "sst2/accuracy": 0.5321,
                "stsb/spearman": 0.1042,
                "stsb/pearson": 0.0977,
                "sst2/score": 0.5321,
                "stsb/score": 0.10095,
                "average": 0.31652,
            },
            "main_metric": "average",
            "n_examples": 200,
            "seconds": 3.0,
            "config": {},
            "skipped": {"mnli": "no files under glue/MNLI", "qqp": "no files under glue/QQP"},
        },
        "ner": {
            "task_type": "token-classification",
            "dataset": {"name": "E-commerce NER", "type": "ecommerce-ner", "split": "test"},
            "metrics": {"f1": 0.1837, "precision": 0.2, "recall": 0.17},
            "main_metric": "f1",
            "n_examples": 40,
            "seconds": 1.1,
            "config": {},
        },
    },
}


def write_run_records(model_dir: str | Path) -> tuple[Path, Path]:
    """Write `training_summary.json` into `model_dir` and `eval/results.json` under it."""
    model_dir = Path(model_dir)
    summary = model_dir / "training_summary.json"
    summary.write_text(json.dumps(TRAINING_SUMMARY, indent=2))
    results = model_dir / "eval" / "results.json"
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(RESULTS, indent=2))
    return summary, results


PHASES = [  # (name, steps, seq_len, mask rate, schedule, peak lr): three short MLM phases
    ("pretrain", 2, 32, 0.3, "linear", 2e-3),
    ("context-extension", 2, 64, 0.3, "constant", 1e-3),
    ("domain-annealing", 2, 64, 0.15, "linear", 1e-3),
]


@cache
def trained_model_dir() -> Path:
    """A tiny RexBERT MLM trained for three short phases with `Trainer`; its `training_summary.json`
    holds the measured token counts and losses. Shared by all tests of the session (do not modify)."""
    from datasets import Dataset
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    import modeling_rexbert

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config())
    out = SESSION_DIR / "trained"
    phases = []
    for number, (name, steps, seq_len, mask_rate, schedule, peak_lr) in enumerate(PHASES, start=1):
        rows = Dataset.from_dict(dict(tokenizer(SENTENCES * 4, truncation=True, max_length=seq_len)))
        args = TrainingArguments(
            output_dir=str(SESSION_DIR / f"trainer-{number}"),
            max_steps=steps,
            per_device_train_batch_size=8,
            learning_rate=peak_lr,
            lr_scheduler_type=schedule,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            dataloader_pin_memory=False,
            seed=number,
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
        )
        collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mask_rate, seed=number)
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)
        trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        phases.append(
            {
                "phase": number,
                "name": name,
                "steps": steps,
                "tokens": int(trainer.state.num_input_tokens_seen),
                "seq_len": seq_len,
                "mask_rate": mask_rate,
                "lr_schedule": schedule,
                "peak_lr": peak_lr,
                "mixture": {
                    "start": {"listing": 0.5, "review": 0.3, "general": 0.2},
                    "end": {"listing": 0.5, "review": 0.3, "general": 0.2},
                },
                "guided_mlm": False,
                "final_loss": losses[-1],
                "checkpoint": str(out),
            }
        )
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    summary = {"preset": "tiny-test", "config": model.config.to_diff_dict(), "phases": phases}
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2))
    return out


def model_index_values(card) -> dict[tuple[str, str], float]:
    """{(task name, metric): value} of a card's parsed model-index, to compare with `results.json`."""
    return {
        (result.task_name, result.metric_type): result.metric_value for result in card.data.eval_results or []
    }


def results_values(results: dict[str, Any]) -> dict[tuple[str, str], float]:
    """{(suite, metric): value} of a results.json, the same keys as `model_index_values`."""
    return {
        (suite_name, metric): value
        for suite_name, suite in results["suites"].items()
        for metric, value in flatten_metrics(suite["metrics"]).items()
    }
