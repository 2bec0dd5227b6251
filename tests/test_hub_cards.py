"""Model and dataset cards: rendered from a tiny trained model's records and a curation report, parsed
back with huggingface_hub, and checked against the numbers they were built from."""

from __future__ import annotations

import copy
import json

import pytest
from hub_fixtures import (
    RESULTS,
    SESSION_DIR,
    model_index_values,
    results_values,
    save_tiny_model,
    trained_model_dir,
)
from hub_server import validate_card_metadata
from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.repocard_data import eval_results_to_model_index

from hub_cards import CardOptions, DatasetCardOptions, build_dataset_card, build_model_card, write_model_card
from hub_cards.dataset_card import size_category
from hub_cards.model_card import flatten_metrics


@pytest.fixture(scope="module")
def results_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "results.json"
    path.write_text(json.dumps(RESULTS, indent=2))
    return path


@pytest.fixture(scope="module")
def card_path(tmp_path_factory, results_path):
    """The model card of the tiny trained model, written to a copy of its directory and parsed back."""
    import shutil

    model_dir = tmp_path_factory.mktemp("card") / "model"
    shutil.copytree(trained_model_dir(), model_dir)
    options = CardOptions(
        repo_id="shop-lab/rexbert-tiny",
        base_model="answerdotai/ModernBERT-base",
        datasets=["shop-lab/ecom-niverse-sample"],
        tags=["tiny"],
    )
    return write_model_card(model_dir, options, results=results_path)


def test_rendered_card_model_index_equals_results_json(card_path, results_path):
    card = ModelCard.load(card_path)
    print(card.content)  # the rendered card, visible with `pytest -s`
    results = json.loads(results_path.read_text())
    index_values = model_index_values(card)
    assert index_values == results_values(results)
    # every evaluated suite is in the model-index, with its task type and dataset
    by_suite = {result.task_name: result for result in card.data.eval_results}
    assert set(by_suite) == set(results["suites"])
    for suite_name, suite in results["suites"].items():
        assert by_suite[suite_name].task_type == suite["task_type"]
        assert by_suite[suite_name].dataset_name == suite["dataset"]["name"]
        assert by_suite[suite_name].dataset_split == suite["dataset"]["split"]
    assert index_values[("glue", "sst2/accuracy")] == RESULTS["suites"]["glue"]["metrics"]["sst2/accuracy"]


def test_card_from_eval_suites_results(tmp_path):
    """A results.json written by the eval suites themselves (esci-tokens on the tiny trained model, a small
    budget) ends up in the model-index with the same numbers."""
    from eval_suites.runner import default_budget, evaluate_model, results_document, write_results
    from rexbert_core.sample_corpus import write_sample_eval_data

    model_dir = trained_model_dir()
    products = write_sample_eval_data(tmp_path / "data")["esci_products"]
    budget = {"esci-tokens": default_budget("esci-tokens").override(max_eval_examples=10)}
    results = evaluate_model(str(model_dir), ["esci-tokens"], {"products": [str(products)]}, budget)
    results_path = write_results(results_document(str(model_dir), results), tmp_path / "eval")
    card = ModelCard(str(build_model_card(model_dir, results=results_path)))
    written = json.loads(results_path.read_text())
    assert model_index_values(card) == results_values(written)
    assert len(card.data.eval_results) == len(written["suites"]["esci-tokens"]["metrics"]) > 0
    assert card.data.eval_results[0].task_type == "fill-mask"


def test_card_metadata_round_trips_and_validates(card_path):
    card = ModelCard.load(card_path)
    data = card.data
    assert data.license == "apache-2.0"
    assert data.language == ["en"]
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "fill-mask"
    assert {"rexbert", "modernbert", "tiny"} <= set(data.tags)
    assert "custom_code" not in data.tags  # published ModernBERT-typed: no remote code
    assert data.base_model == "answerdotai/ModernBERT-base"
    assert data.datasets == ["shop-lab/ecom-niverse-sample"]
    assert data.model_name == "shop-lab/rexbert-tiny"
    # the YAML header is what huggingface_hub itself would write for these EvalResults
    header = card.content.split("---")[1]
    import yaml

    assert yaml.safe_load(header)["model-index"] == eval_results_to_model_index(
        data.model_name, data.eval_results
    )
    assert validate_card_metadata(card.content, "model") == []


def test_card_text_describes_architecture_phases_usage_and_limits(card_path):
    import modeling_rexbert

    text = ModelCard.load(card_path).text
    summary = json.loads((card_path.parent / "training_summary.json").read_text())
    n_parameters = modeling_rexbert.RexBertForMaskedLM.from_pretrained(card_path.parent).num_parameters()
    assert f"({n_parameters:,})" in text  # counted from safetensors headers, checked against the model
    assert "| layers | 3 |" in text and "| hidden size | 64 |" in text
    for phase in summary["phases"]:
        assert f"| {phase['phase']} | {phase['name']} | {phase['tokens']} | {phase['steps']} |" in text
        assert f"{phase['final_loss']:.3f}" in text
    assert 'pipeline("fill-mask", model="shop-lab/rexbert-tiny")' in text
    assert 'SentenceTransformer("shop-lab/rexbert-tiny")' in text
    assert "AutoModel.from_pretrained" in text and "trust_remote_code" not in text
    assert "stored as `ModernBertForMaskedLM`" in text
    assert 'RexBertForMaskedLM.from_pretrained("shop-lab/rexbert-tiny")' in text
    assert "## Limitations" in text
    assert "`glue` suite skipped mnli (no files under glue/MNLI), qqp (no files under glue/QQP)" in text
    main = RESULTS["suites"]["ner"]["metrics"]["f1"]
    assert f"| ner | E-commerce NER (test) | f1 | **{main:.4f}** |" in text


def test_remote_code_card_says_trust_remote_code(tmp_path):
    model_dir = save_tiny_model(tmp_path / "mlm")
    card = build_model_card(model_dir, CardOptions(repo_id="shop-lab/x", remote_code=True))
    assert 'AutoModel.from_pretrained("shop-lab/x", trust_remote_code=True)' in card.text
    assert "stored as `RexBertForMaskedLM`" in card.text and "custom_code" in card.data.tags


def test_card_without_records_and_head_pipeline_tag(tmp_path):
    model_dir = save_tiny_model(tmp_path / "cls", head="sequence-classification", num_labels=2)
    card = build_model_card(model_dir)
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.eval_results is None and "model-index" not in card.content
    assert "has not been evaluated yet" in card.text and "No training summary" in card.text


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"model": "x"}, 'no "suites"'),
        (
            {"suites": {"ner": {"task_type": "token-classification", "metrics": {}}}},
            'suite "ner" has no "dataset"',
        ),
        (
            {"suites": {"ner": {"task_type": "t", "dataset": {"name": "n"}, "metrics": {}}}},
            'no dataset "type"',
        ),
    ],
)
def test_bad_results_json_is_named(tmp_path, broken, message):
    model_dir = save_tiny_model(tmp_path / "m")
    with pytest.raises(ValueError, match=message):
        build_model_card(model_dir, results=broken)


def test_flatten_metrics_keeps_only_finite_numbers():
    assert flatten_metrics({"a": 1, "b": {"c": 0.5, "d": "x"}, "e": float("nan"), "f": True}) == {
        "a": 1.0,
        "b/c": 0.5,
    }


def test_validator_rejects_broken_model_index(card_path):
    content = card_path.read_text()
    assert validate_card_metadata(content.replace("value: ", "value: not-a-number-", 1), "model")


# ---- dataset cards ----------------------------------------------------------------------------------

REPORT = {
    "stages": [
        {
            "name": "language",
            "docs_in": 470,
            "docs_kept": 452,
            "docs_removed": 18,
            "tokens_in": 61000,
            "tokens_kept": 59000,
            "reasons": {"not_english": 18},
        },
        {
            "name": "quality",
            "docs_in": 452,
            "docs_kept": 410,
            "docs_removed": 42,
            "tokens_in": 59000,
            "tokens_kept": 55000,
            "reasons": {"gopher_short_doc": 30, "c4_lorem_ipsum": 12},
        },
        {
            "name": "dedup",
            "docs_in": 410,
            "docs_kept": 400,
            "docs_removed": 10,
            "tokens_in": 55000,
            "tokens_kept": 54000,
            "reasons": {"minhash_duplicate": 10},
        },
    ],
    "domains": {"ecommerce": {"docs": 290, "tokens": 40000}, "general": {"docs": 110, "tokens": 14000}},
    "sources": {
        "listing": {"docs_in": 180, "docs_kept": 170},
        "review": {"docs_in": 130, "docs_kept": 120},
        "general": {"docs_in": 160, "docs_kept": 110},
    },
    "totals": {
        "docs_in": 470,
        "docs_kept": 400,
        "docs_removed": 70,
        "docs_rejected": 0,
        "tokens_kept": 54000,
    },
    "plots": [],
}


@pytest.fixture()
def curated_dir(tmp_path):
    """A curated corpus directory in the curation layout: parquet shards plus report/report.json."""
    import pandas as pd

    (tmp_path / "corpus").mkdir()
    (tmp_path / "report").mkdir()
    rows = [
        {"id": f"d{i}", "text": f"product {i} in stock", "source": "listing", "domain": "ecommerce"}
        for i in range(6)
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "corpus" / "00000.parquet")
    (tmp_path / "report" / "report.json").write_text(json.dumps(REPORT))
    return tmp_path


def test_dataset_card_from_curation_report(curated_dir):
    options = DatasetCardOptions(repo_id="shop-lab/ecom-sample", source_licenses={"review": "cc-by-4.0"})
    card = build_dataset_card(curated_dir, options)
    card.save(curated_dir / "README.md")
    parsed = DatasetCard.load(curated_dir / "README.md")
    assert parsed.data.size_categories == ["n<1K"]
    assert parsed.data.license == "other" and parsed.data.language == ["en"]
    assert parsed.data.configs == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "corpus/*.parquet"}]}
    ]
    text = parsed.text
    assert "| quality | 452 | 410 | 42 | 9.3% | gopher_short_doc: 30, c4_lorem_ipsum: 12 |" in text
    assert "| ecommerce | 290 | 72.5% | 40.0K | 74.1% |" in text
    assert "| listing | 180 | 170 |" in text
    assert "| review | cc-by-4.0 |" in text and "| listing | not recorded: check the source" in text
    assert "![documents and tokens per domain](report/domain_distribution.png)" in text
    assert (curated_dir / "report" / "domain_distribution.png").read_bytes()[:4] == b"\x89PNG"
    assert validate_card_metadata(parsed.content, "dataset") == []


def test_dataset_card_uses_the_reports_own_plots(curated_dir):
    """The curation report lists its PNGs relative to report/; its domain chart is used, not redrawn."""
    (curated_dir / "report" / "plots").mkdir()
    for name in ("domain_distribution.png", "stages.png"):
        (curated_dir / "report" / "plots" / name).write_bytes(b"\x89PNG fake")
    report = {**REPORT, "plots": ["plots/domain_distribution.png", "plots/stages.png", "plots/missing.png"]}
    text = build_dataset_card(curated_dir, report=report).text
    assert "![documents and tokens per domain](report/plots/domain_distribution.png)" in text
    assert "![report/plots/stages.png](report/plots/stages.png)" in text
    assert "missing.png" not in text
    assert not (curated_dir / "report" / "domain_distribution.png").exists()


def test_dataset_card_configs_drive_load_dataset(curated_dir):
    """The `configs` metadata is what `load_dataset(<repo or dir>)` follows to find the shards."""
    from datasets import load_dataset

    build_dataset_card(curated_dir, DatasetCardOptions(repo_id="x/y")).save(curated_dir / "README.md")
    (curated_dir / "stray.jsonl").write_text('{"unrelated": 1}\n')  # ignored thanks to the configs
    corpus = load_dataset(str(curated_dir), split="train", cache_dir=str(SESSION_DIR / "datasets-cache"))
    assert corpus.num_rows == 6 and corpus.column_names == ["id", "text", "source", "domain"]


def test_bad_report_is_named(curated_dir):
    broken = copy.deepcopy(REPORT)
    del broken["stages"][1]["docs_removed"]
    with pytest.raises(ValueError, match='stage quality has no "docs_removed"'):
        build_dataset_card(curated_dir, report=broken)


@pytest.mark.parametrize(
    "n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (2_500_000, "1M<n<10M")]
)
def test_size_category(n, label):
    assert size_category(n) == label
