"""`rexbert run` end to end on the embedded default config with a tiny budget.

One uninterrupted run (module fixture) is checked for every promised artefact; a second run of the
same command is killed (SIGKILL) during phase 2, rerun, and must finish with the same final weights and
evaluation results as the uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from process_helpers import kill_when, rexbert_subprocess

from rexbert import cli
from rexbert.pipeline import STAGES, read_run_config

REPO_ROOT = Path(__file__).resolve().parents[1]
# The default config, cut to a few steps per phase and a few dozen examples per suite. Phase 2 saves a
# checkpoint every 3 steps so a kill lands between checkpoints.
TINY_BUDGET = [
    "--set",
    "pretrain.overrides.phases.general.steps=6",
    "--set",
    "pretrain.overrides.phases.context.steps=9",
    "--set",
    "pretrain.overrides.phases.context.save_steps=3",
    "--set",
    "pretrain.overrides.phases.anneal.steps=4",
    "--set",
    "pretrain.overrides.phases.anneal.save_steps=0",
    "--set",
    "eval.budget.all={max_train_examples: 24, max_eval_examples: 24, epochs: 1, batch_size: 8}",
    "--set",
    "eval.budget.esci-tokens.max_eval_examples=16",
]
PHASE2_CHECKPOINTS = "pretrain/phase2-context/checkpoints"


def run_command(output: Path) -> list[str]:
    return ["run", "--output", str(output), *TINY_BUDGET]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("rexbert-run") / "demo"
    assert cli.main(run_command(output)) == 0
    return output


def test_run_writes_every_promised_artefact(finished_run):
    import datasets
    import torch
    from huggingface_hub import DatasetCard, ModelCard
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    import modeling_rexbert  # noqa: F401  (registers the rexbert model type)

    out = finished_run
    config = read_run_config(None, TINY_BUDGET[1::2])
    assert all((out / "stages" / f"{stage.name}.done").is_file() for stage in STAGES)

    for corpus in config.curation.corpora:
        shards = sorted(str(p) for p in (out / "curation" / corpus / "corpus").glob("*.parquet"))
        rows = datasets.load_dataset(
            "parquet", data_files=shards, split="train", cache_dir=str(out / "hf-cache")
        )
        assert rows.num_rows > 50 and {"id", "text", "source", "domain"} <= set(rows.column_names)
        report = json.loads((out / "curation" / corpus / "report" / "report.json").read_text())
        assert report["totals"]["docs_kept"] == rows.num_rows
        card = DatasetCard.load(out / "curation" / corpus / "README.md")
        assert card.data.size_categories and "curation" in card.text.lower()
    ecom = json.loads((out / "curation" / "ecom" / "report" / "report.json").read_text())
    assert ecom["sources"]["general"]["docs_kept"] < 0.2 * ecom["sources"]["general"]["docs_in"]  # classifier

    summary = json.loads((out / "model" / "training_summary.json").read_text())
    assert [p["name"] for p in summary["phases"]] == ["general", "context", "anneal"]
    for phase in summary["phases"]:
        assert (
            out / "pretrain" / f"phase{phase['phase']}-{phase['name']}" / "final" / "config.json"
        ).is_file()
    assert list((out / PHASE2_CHECKPOINTS).glob("checkpoint-*"))

    model = AutoModel.from_pretrained(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    batch = tokenizer(["Norvik wireless earbuds, 12 hours of battery"], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape == (1, batch["input_ids"].shape[1], model.config.hidden_size)
    assert torch.isfinite(hidden).all()
    embedding = SentenceTransformer(str(out / "model"), device="cpu").encode(["a steel frying pan"])
    assert embedding.shape == (1, model.config.hidden_size)

    results = json.loads((out / "eval" / "results.json").read_text())
    assert set(results["suites"]) == set(config.eval.suites)
    for suite in results["suites"].values():
        assert isinstance(suite["metrics"][suite["main_metric"]], float)
    assert (out / "eval" / "results.md").is_file() and (out / "eval" / "results.png").stat().st_size > 0

    card = ModelCard.load(out / "model" / "README.md")
    reported = {(r.task_name, r.metric_type) for r in card.data.eval_results}
    assert {(name, s["main_metric"]) for name, s in results["suites"].items()} <= reported

    report = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert len(links) >= 10 and all((out / link).exists() for link in links), links

    # the finetune stage: a bi-encoder and a reranker beside BM25, in the report, loadable as shipped
    search = {
        t: json.loads((out / "finetune" / t / "results.json").read_text()) for t in ("retrieval", "rerank")
    }
    for method, task in (("bm25", "retrieval"), ("dense", "retrieval"), ("hybrid", "retrieval"),
                         ("rerank@bm25", "rerank"), ("rerank@dense", "rerank")):  # fmt: skip
        assert f"| {method} | {search[task][method]['ndcg@10']:.4f} |" in report, method
    assert (
        SentenceTransformer(str(out / "finetune" / "retrieval" / "model"), device="cpu")
        .encode(["kettle"])
        .shape[0]
        == 1
    )


def test_pretraining_from_token_shards_equals_pretraining_from_text(finished_run, tmp_path):
    """The tokenize stage's shards (read memory-mapped) train exactly the model the corpus text trains."""
    import yaml
    from safetensors.torch import load_file

    manifest = json.loads((finished_run / "tokens" / "manifest.json").read_text())
    recipe = yaml.safe_load((finished_run / "pretrain" / "recipe.yaml").read_text())
    assert set(manifest["sources"]) == set(recipe["sources"]) == {"general", "ecom"}
    assert all(source["shards"] for source in recipe["sources"].values())
    from_text = tmp_path / "from-text"
    argv = [*run_command(from_text), "--set", "pretrain.tokenize=false", "--stop-after", "pretrain"]
    assert cli.main(argv) == 0
    assert not (from_text / "tokens").exists()
    assert json.loads((from_text / "stages" / "tokenize.done").read_text())["outputs"]["skipped"]
    final = "pretrain/phase3-anneal/final/model.safetensors"
    assert load_file(from_text / final).keys() == load_file(finished_run / final).keys()
    for name, tensor in load_file(finished_run / final).items():
        assert load_file(from_text / final)[name].equal(tensor), name


def _complete_checkpoints(output: Path) -> list[int]:
    return sorted(
        int(c.name.split("-")[1])
        for c in (output / PHASE2_CHECKPOINTS).glob("checkpoint-*")
        if (c / "checksums.json").is_file()  # written last, once the checkpoint is complete
    )


def _kill_when(output: Path, ready) -> None:
    """Start the run in a subprocess and SIGKILL it as soon as `ready()` holds."""
    kill_when(rexbert_subprocess(run_command(output)), ready)


def _same_weights_and_scores(output: Path, reference: Path) -> None:
    import torch
    from safetensors.torch import load_file

    resumed, expected = (
        load_file(output / "model" / "model.safetensors"),
        load_file(reference / "model" / "model.safetensors"),
    )
    assert resumed.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(resumed[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)
    resumed_results = json.loads((output / "eval" / "results.json").read_text())["suites"]
    reference_results = json.loads((reference / "eval" / "results.json").read_text())["suites"]
    for suite, record in reference_results.items():
        for metric, value in record["metrics"].items():
            if isinstance(value, float):
                assert resumed_results[suite]["metrics"][metric] == pytest.approx(value, abs=1e-4), (
                    suite,
                    metric,
                )


def test_killed_during_phase_two_resumes_and_matches_uninterrupted(finished_run, tmp_path, caplog):
    output = tmp_path / "demo"
    _kill_when(output, lambda: _complete_checkpoints(output))
    step = _complete_checkpoints(output)[-1]  # the last checkpoint the kill left complete
    assert not (output / "pretrain" / "phase2-context" / "phase_summary.json").exists(), "killed too late"
    assert not (output / "stages" / "pretrain.done").exists()
    curated_at = (output / "stages" / "curate.done").stat().st_mtime

    with caplog.at_level(logging.INFO):
        assert cli.main(run_command(output)) == 0
    assert re.search(rf"phase 2 \(context\): resuming from .*checkpoint-{step}\b", caplog.text), caplog.text[
        -2000:
    ]
    assert "phase 1 (general) already finished" in caplog.text
    assert (output / "stages" / "curate.done").stat().st_mtime == curated_at  # finished stages not rerun
    _same_weights_and_scores(output, finished_run)


def test_killed_between_stages_resumes_and_matches_uninterrupted(finished_run, tmp_path):
    output = tmp_path / "demo"
    _kill_when(output, lambda: (output / "stages" / "curate.done").is_file())
    assert not (output / "stages" / "pretrain.done").exists()
    assert cli.main(run_command(output)) == 0
    _same_weights_and_scores(output, finished_run)
