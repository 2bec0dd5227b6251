"""`rexbert eval`: results.json / results.md for each model, the comparison table and plot, the
`compare` verb, and argument errors."""

import argparse
import datetime as dt
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from eval_helpers import tiny_checkpoint  # noqa: E402

from eval_suites import cli  # noqa: E402
from rexbert.cli import main as rexbert  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_data):
    titles = pd.read_parquet(shared_data / "ecommerce_products_vespa" / "products.parquet", columns=["title"])
    texts = titles["title"].tolist()[:1500]
    root = tmp_path_factory.mktemp("models")
    return [
        str(tiny_checkpoint(root / name, texts, seed=seed)) for seed, name in enumerate(("alpha", "beta"))
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, models, shared_data):
    out = tmp_path_factory.mktemp("eval")
    esci = shared_data / "esci_fixtures"
    code = rexbert(
        [
            "eval",
            "--model",
            models[0],
            "--model",
            models[1],
            "--suite",
            "esci-tokens,glue",
            "--data",
            f"esci={esci / 'vespa_esci_sample_examples.parquet'},"
            f"{esci / 'vespa_esci_sample_products.parquet'}",
            "--data",
            str(shared_data / "glue"),
            "--glue-tasks",
            "rte,mnli",
            "--max-train-examples",
            "32",
            "--max-eval-examples",
            "32",
            "--max-seq-length",
            "64",
            "--budget",
            "glue.epochs=1",
            "--save-predictions",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_results_json_follows_the_schema(run_dir):
    document = json.loads((run_dir / "alpha" / "results.json").read_text())
    assert document["model"].endswith("alpha") and dt.datetime.fromisoformat(document["created"])
    assert list(document["suites"]) == ["esci-tokens", "glue"]
    for suite in document["suites"].values():
        assert {"task_type", "dataset", "metrics", "main_metric", "n_examples", "seconds", "config"} <= set(
            suite
        )
        assert set(suite["dataset"]) == {"name", "type", "split"}
        assert suite["main_metric"] in suite["metrics"] and suite["seconds"] > 0
        assert all(isinstance(v, float) for v in suite["metrics"].values())
    tokens, glue = document["suites"]["esci-tokens"], document["suites"]["glue"]
    assert tokens["task_type"] == "fill-mask" and tokens["config"]["products"] == 16
    assert glue["skipped"] == {"mnli": "no data"} and glue["config"]["tasks"] == ["rte"]
    assert glue["n_examples"] == 32 and glue["metrics"]["average"] == glue["metrics"]["rte/accuracy"]
    predictions = json.loads((run_dir / "alpha" / "predictions" / "glue.json").read_text())
    assert len(predictions["rte"]["predictions"]) == 32


def test_results_feed_the_model_card_builder(run_dir):
    from hub_cards.model_card import eval_results_from, skipped_tasks

    document = json.loads((run_dir / "beta" / "results.json").read_text())
    entries = eval_results_from(document)
    assert len(entries) == sum(len(s["metrics"]) for s in document["suites"].values())
    assert skipped_tasks(document) == {"glue": ["mnli (no data)"]}


def test_markdown_and_comparison_outputs(run_dir):
    summary = (run_dir / "alpha" / "results.md").read_text()
    assert "| esci-tokens | fill-mask |" in summary and "| mnli | skipped: no data |" in summary
    table = (run_dir / "comparison.md").read_text()
    assert "| suite | metric | alpha | beta |" in table and "| glue | average |" in table
    assert (run_dir / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_verb_rebuilds_the_table_from_saved_results(run_dir, tmp_path):
    assert (
        rexbert(
            [
                "eval",
                "compare",
                str(run_dir / "alpha"),
                str(run_dir / "beta" / "results.json"),
                "--output",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "comparison.md").read_text() == (run_dir / "comparison.md").read_text()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_bad_input_is_one_line_and_status_2(models, tmp_path, capsys):
    """Bad eval input ends in one line on stderr naming the problem, never a traceback."""
    capsys.readouterr()
    cases = [
        (["eval", "compare", str(tmp_path / "nothing"), "--output", str(tmp_path)], "no results.json"),
        (
            ["eval", "--model", models[0], "--suite", "ner", "--output", str(tmp_path)],
            "suite ner needs data: pass --data ner=PATH",
        ),
        (
            ["eval", "--model", models[0], "--suite", "squad", "--output", str(tmp_path)],
            "unknown suites ['squad']",
        ),
        (
            [
                "eval",
                "--model",
                str(tmp_path / "nonexistent"),
                "--suite",
                "glue",
                "--data",
                "glue=x",
                "--output",
                str(tmp_path),
            ],
            "nonexistent: no such model directory",
        ),
        (
            [
                "eval",
                "--model",
                models[0],
                "--suite",
                "ner",
                "--data",
                f"ner={tmp_path / 'none.jsonl'}",
                "--output",
                str(tmp_path),
            ],
            "none.jsonl: no such file",
        ),
        (["eval", "--suite", "ner"], "--model and --output are required"),
    ]
    for argv, message in cases:
        assert rexbert(argv) == 2, argv
        assert message in one_line_error(capsys), argv


def test_data_and_budget_arguments(shared_data):
    glue_dir = str(shared_data / "glue")
    ner_file = str(shared_data / "ecommerce_ner_lenovo" / "lenovo_ner_test.jsonl.gz")
    assert cli.parse_data([glue_dir, ner_file, "esci=a.parquet,b.parquet", "esci=c.csv"]) == {
        "glue": [glue_dir],
        "ner": [ner_file],
        "esci": ["a.parquet", "b.parquet", "c.csv"],
    }
    with pytest.raises(ValueError, match="unknown key 'squad'"):
        cli.parse_data(["squad=x.json"])
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--model",
            "m",
            "--epochs",
            "2",
            "--budget",
            "glue.max_train_examples=none",
            "--budget",
            "ner.seed=7",
        ]
    )
    budgets = cli.parse_budgets(args, ["glue", "ner"])
    assert budgets["glue"].max_train_examples is None and budgets["glue"].epochs == 2.0
    assert budgets["ner"].seed == 7 and budgets["ner"].epochs == 2.0
    with pytest.raises(ValueError, match="expected SUITE.FIELD=VALUE"):
        cli.parse_budgets(parser.parse_args(["--budget", "glue.warmup=3"]), ["glue"])


def test_models_sharing_a_folder_name_get_distinct_outputs():
    from eval_suites.models import model_names

    assert model_names(["runs/a/model", "runs/b/model"]) == ["a--model", "b--model"]
    assert model_names(["/tmp/x/alpha", "/tmp/y/beta"]) == ["alpha", "beta"]
    assert model_names(["same", "same"]) == ["same-0", "same-1"]
