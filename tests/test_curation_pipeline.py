"""The whole curation pipeline on the embedded sample corpus plus deliberately broken input.

Checks the accounting identity against independent counts (input lines and rows, reject lines,
removed-document files, corpus rows read back with `datasets`), the report files, resuming, and the CLI.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.config import CurationConfig, StagesConfig, config_from_dict, load_config
from curation.pipeline import PipelineBuilder
from curation.run import run_pipeline
from curation.steps import CountingFilter, FilterStage, StepContext
from rexbert_core.sample_corpus import write_classifier_examples, write_sample_corpus
from rexbert_core.typed_config import ConfigError, DataError, from_mapping

MAX_CHARS = 5000


def _write_bad_inputs(folder: Path) -> int:
    """A jsonl file and a parquet file full of problems; returns how many input records they hold."""
    folder.mkdir(parents=True)
    good = {"id": "good-1", "text": "Stainless steel water bottle, 750 ml, keeps drinks cold for 24 hours."}
    lines = [
        json.dumps(good).encode(),
        b'{"id": "broken", "text": "unterminated',  # malformed json
        b'{"id": "latin1", "text": "caf\xe9 cr\xe8me"}',  # invalid UTF-8
        json.dumps({"id": "empty", "text": "   "}).encode(),  # empty text
        json.dumps({"id": "notext", "body": "no text field"}).encode(),  # missing field
        json.dumps({"id": "null", "text": None}).encode(),  # null text
        json.dumps({"id": "huge", "text": "word " * (MAX_CHARS // 2)}).encode(),  # too long
        b"[1, 2, 3]",  # not an object
        json.dumps({"id": "number", "text": 42}).encode(),
    ]  # text not a string
    (folder / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    pq.write_table(
        pa.table({"id": ["p1", "p2"], "body": ["no", "text column"]}), folder / "wrong_columns.parquet"
    )
    (folder / "truncated.parquet").write_bytes(b"PAR1 not really parquet")
    return len(lines) + 2 + 1


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("curation")
    write_sample_corpus(root / "data")
    n_bad = _write_bad_inputs(root / "bad")
    (root / "n_bad.txt").write_text(str(n_bad))
    examples = write_classifier_examples(root / "examples.jsonl")
    from rexbert.cli import main as rexbert

    assert (
        rexbert(["curate", "train-classifier", "--data", str(examples), "--out", str(root / "ecom.bin")]) == 0
    )
    config = {
        "output_dir": f"{root}/out",
        "tasks": 2,
        "workers": 1,
        "progress": False,
        "limits": {"max_chars": MAX_CHARS},
        "sources": [
            {"name": "listing", "path": f"{root}/data/listing.jsonl"},
            {"name": "review", "path": f"{root}/data/review.jsonl", "domain_key": None, "domain": "reviews"},
            {"name": "general", "path": f"{root}/data/general.jsonl"},
            {"name": "bad_jsonl", "path": f"{root}/bad", "glob": "*.jsonl"},
            {"name": "bad_parquet", "path": f"{root}/bad", "format": "parquet", "glob": "*.parquet"},
        ],
        "stages": {"classifier": {"model": f"{root}/ecom.bin"}},
    }
    import yaml

    (root / "run.yaml").write_text(yaml.safe_dump(config))
    assert rexbert(["curate", "run", "--config", str(root / "run.yaml")]) == 0
    return root


def _lines(pattern: str, root: Path) -> int:
    total = 0
    for path in root.glob(pattern):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


def test_accounting_identity_against_independent_counts(workspace):
    report = json.loads((workspace / "out/report/report.json").read_text())
    totals = report["totals"]
    n_input = _lines("data/*.jsonl", workspace) + int((workspace / "n_bad.txt").read_text())
    from datasets import load_dataset

    corpus = load_dataset("parquet", data_files=str(workspace / "out/corpus/*.parquet"), split="train")
    assert {"id", "text", "source", "domain"} <= set(corpus.column_names)
    assert totals["docs_in"] == n_input
    assert totals["docs_kept"] == len(corpus)
    assert totals["docs_rejected"] == _lines("out/rejects/*.jsonl", workspace)
    assert totals["docs_removed"] == _lines("out/removed/*/*.jsonl.gz", workspace)
    assert n_input == len(corpus) + totals["docs_removed"] + totals["docs_rejected"]
    assert totals["accounting_ok"]


def test_rejects_name_each_problem(workspace):
    rejects = [
        json.loads(line)
        for path in (workspace / "out/rejects").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    reasons = sorted(r["reason"] for r in rejects)
    assert reasons == sorted(
        [
            "malformed_json",
            "invalid_utf8",
            "empty_text",
            "missing_field:text",
            "empty_text",
            "too_long",
            "not_an_object",
            "text_not_a_string",
            "missing_field:text",
            "missing_field:text",
            "unreadable_file",
        ]
    )
    read = next(
        s
        for s in json.loads((workspace / "out/report/report.json").read_text())["stages"]
        if s["name"] == "read"
    )
    assert read["reasons"]["missing_field:text"] == 3


def test_report_has_the_agreed_keys_and_plots(workspace):
    report = json.loads((workspace / "out/report/report.json").read_text())
    for stage in report["stages"]:
        assert {"name", "docs_in", "docs_kept", "docs_removed", "tokens_in", "tokens_kept", "reasons"} <= set(
            stage
        )
        assert stage["docs_in"] >= stage["docs_kept"] and stage["tokens_in"] >= stage["tokens_kept"]
    names = [s["name"] for s in report["stages"]]
    assert names == ["read", "quality", "classifier", "language", "pii", "exact_dedup", "minhash_dedup"]
    classifier = report["stages"][names.index("classifier")]
    assert classifier["reasons"]["below_threshold"] >= 150  # the general-prose source is dropped
    sources = report["sources"]
    assert sources["general"]["kept_fraction"] < 0.05
    assert sources["listing"]["kept_fraction"] > 0.8 and sources["review"]["kept_fraction"] > 0.7
    assert set(report["domains"]) >= {"ecommerce", "reviews"}
    assert sum(d["docs"] for d in report["domains"].values()) == report["totals"]["docs_kept"]
    for plot in report["plots"]:
        assert (workspace / "out/report" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(report["plots"]) == 4
    assert "| classifier |" in (workspace / "out/report/report.md").read_text()


def test_rerun_skips_finished_tasks_and_resumes_a_missing_one(workspace):
    out = workspace / "out"
    config = load_config(workspace / "run.yaml")
    before = json.loads((out / "report/report.json").read_text())
    shards = sorted(out.glob("corpus/*.parquet"))
    step_stats = [p for p in sorted(out.glob("logs/*/stats/*.json")) if p.parts[-3] != "report"]
    stamps = {p: p.stat().st_mtime_ns for p in shards + step_stats}
    run_pipeline(config)  # everything finished: nothing runs again (only the report is rebuilt)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # lose the completion mark of one filter task: only that task runs again
    os.remove(out / "logs/filter/completions/00001")
    run_pipeline(config)
    assert (out / "logs/filter/stats/00001.json").stat().st_mtime_ns > stamps[
        out / "logs/filter/stats/00001.json"
    ]
    assert (out / "logs/filter/stats/00000.json").stat().st_mtime_ns == stamps[
        out / "logs/filter/stats/00000.json"
    ]
    after = json.loads((out / "report/report.json").read_text())
    assert after["totals"] == before["totals"] and after["stages"] == before["stages"]


def test_config_errors_name_the_problem(tmp_path, monkeypatch):
    from curation.pipeline import PipelineBuilder

    monkeypatch.chdir(tmp_path)  # relative paths are taken from the working directory
    missing = config_from_dict(
        {
            "output_dir": "x",
            "sources": [{"name": "a", "path": "nowhere"}],
            "stages": {"classifier": {"enabled": False}},
        }
    )
    assert missing.output_dir == str(tmp_path / "x") and missing.sources[0].path == str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="source 'a'.*does not exist"):
        PipelineBuilder(missing).step_lists()
    with pytest.raises(
        ConfigError, match="config.stages: unknown field 'qualty' \\(did you mean 'quality'\\?\\)"
    ):
        config_from_dict(
            {"output_dir": "x", "sources": [{"name": "a", "path": "a"}], "stages": {"qualty": {}}}
        )
    with pytest.raises(ConfigError, match="config.stages.quality.min_words: expected int, got str 'few'"):
        config_from_dict(
            {
                "output_dir": "x",
                "sources": [{"name": "a", "path": "a"}],
                "stages": {"quality": {"min_words": "few"}},
            }
        )
    with pytest.raises(ConfigError, match="no `model`"):
        config_from_dict({"output_dir": "x", "sources": [{"name": "a", "path": "a"}]})
    with pytest.raises(ConfigError, match="config.sources\\[0\\].format: 'csv' is not one of"):
        config_from_dict(
            {
                "output_dir": "x",
                "sources": [{"name": "a", "format": "csv"}],
                "stages": {"classifier": {"enabled": False}},
            }
        )
    with pytest.raises(
        ConfigError, match="config.executor.kind: 'slurmm' is not one of .* \\(did you mean 'slurm'\\?\\)"
    ):
        config_from_dict(
            {
                "output_dir": "x",
                "sources": [{"name": "a", "path": "a"}],
                "executor": {"kind": "slurmm"},
                "stages": {"classifier": {"enabled": False}},
            }
        )


def test_finefineweb_and_datasets_sources_with_domain_preselection(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shop = "This {} jacket is made of waterproof nylon with taped seams and a zip pocket, size M."
    news = "The council voted on the new transport budget after a long debate in the town hall {}."
    for domain, template in (("fashion", shop), ("politics", news)):
        folder = tmp_path / "ffw" / domain
        folder.mkdir(parents=True)
        rows = [{"text": template.format(i)} for i in range(3)]
        if domain == "fashion":
            rows.append({"text": template.format("labelled"), "domain": "beauty"})
        (folder / f"{domain}_000000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(
        pa.table({"text": [shop.format("hub"), news.format("hub")], "label": ["Shopping", "World"]}),
        tmp_path / "labelled.parquet",
    )
    config = config_from_dict(
        {
            "output_dir": "out",
            "progress": False,
            "sources": [
                {"name": "ffw", "format": "finefineweb", "path": "ffw", "glob": "*/*.jsonl"},
                {
                    "name": "hub",
                    "format": "datasets",
                    "dataset": "parquet",
                    "domain_key": "label",
                    "dataset_options": {"data_files": "labelled.parquet", "split": "train"},
                },
            ],
            "stages": {
                "domain_preselect": {"keep_domains": ["fashion", "beauty", "Shopping"]},
                "quality": {
                    "engine": "datatrove",
                    "datatrove_filters": {"gopher_quality": {"min_doc_words": 5}},
                },
                "language": {"enabled": False},
                "classifier": {"enabled": False},
                "minhash_dedup": {"enabled": False},
            },
            "output": {"format": "jsonl"},
        },
    )
    report = run_pipeline(config)
    rows = [
        json.loads(line)
        for path in (tmp_path / "out/corpus").glob("*.jsonl.gz")
        for line in gzip.decompress(path.read_bytes()).decode().splitlines()
    ]
    assert sorted(r["domain"] for r in rows) == ["Shopping", "beauty", "fashion", "fashion", "fashion"]
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["domain_preselect"]["reasons"] == {"domain_not_selected": 4}
    assert stages["quality:gopher_quality"]["docs_in"] == 5
    assert report["sources"]["hub"]["docs_in"] == 2 and report["totals"]["accounting_ok"]


def test_output_to_a_url_goes_through_datafolder(workspace, tmp_path, capsys):
    """The same run into `memory://` (an fsspec filesystem, as s3:// or hf:// are): corpus, rejects and report
    equal the local run's, nothing lands on the local disk, and the remote output is owned like a local one."""
    import fsspec
    import yaml

    from rexbert.cli import main as rexbert

    config = yaml.safe_load((workspace / "run.yaml").read_text())
    config["output_dir"] = "memory://curation-url/out"
    (tmp_path / "url.yaml").write_text(yaml.safe_dump(config))
    before = set(os.listdir(os.getcwd()))
    assert rexbert(["curate", "run", "--config", str(tmp_path / "url.yaml")]) == 0
    assert set(os.listdir(os.getcwd())) == before
    memory, local = fsspec.filesystem("memory"), workspace / "out"
    remote = "/curation-url/out"

    def remote_json(path: str) -> dict:
        return json.loads(memory.cat_file(f"{remote}/{path}"))

    report, expected = (
        remote_json("report/report.json"),
        json.loads((local / "report/report.json").read_text()),
    )
    for key in ("totals", "stages", "sources", "domains"):
        assert report[key] == expected[key], key
    assert memory.isfile(f"{remote}/report/report.md") and memory.isfile(
        f"{remote}/report/plots/domain_distribution.png"
    )
    shards = sorted(memory.glob(f"{remote}/corpus/*.parquet"))
    assert [Path(s).name for s in shards] == sorted(p.name for p in (local / "corpus").glob("*.parquet"))
    for shard in shards:
        with memory.open(shard, "rb") as handle:
            assert pq.read_table(handle).equals(pq.read_table(local / "corpus" / Path(shard).name))
    rejects = sorted(Path(p).name for p in memory.glob(f"{remote}/rejects/*.jsonl"))
    assert rejects == sorted(p.name for p in (local / "rejects").glob("*.jsonl")) and rejects

    config["stages"]["quality"] = {"min_words": 50}  # a changed config is refused, naming the field
    (tmp_path / "changed.yaml").write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert rexbert(["curate", "run", "--config", str(tmp_path / "changed.yaml")]) == 2
    assert "stages.quality.min_words changed" in capsys.readouterr().err
    memory.pipe_file(f"{remote}/NOTES.md", b"mine")
    assert rexbert(["curate", "run", "--config", str(tmp_path / "changed.yaml"), "--restart"]) == 0
    assert memory.cat_file(f"{remote}/NOTES.md") == b"mine"  # --restart deletes only what curation wrote
    assert remote_json("report/report.json")["totals"]["docs_kept"] < report["totals"]["docs_kept"]
    memory.rm("/curation-url", recursive=True)


# ---- extension: a filter stage is its step file plus one config entry -------------------------------------


@dataclass
class _LongTitleConfig(FilterStage):
    """A stage a user might add: drop documents whose first line has more than `max_words` words."""

    max_words: int = 12

    def steps(self, context: StepContext) -> list:
        return [_LongTitleFilter(self, token_counter=context.token_counter)]


class _LongTitleFilter(CountingFilter):
    def __init__(self, settings: _LongTitleConfig, *, token_counter):
        super().__init__("long_title", token_counter=token_counter)
        self.settings = settings

    def filter(self, doc):
        return len(doc.text.split("\n")[0].split()) <= self.settings.max_words or (False, "long_title")


@dataclass
class _StagesWithLongTitle(StagesConfig):
    long_title: _LongTitleConfig = field(default_factory=_LongTitleConfig)


def test_a_new_filter_stage_is_its_settings_and_one_config_field(tmp_path):
    """The builder walks `StagesConfig`: a subclass with one more field gets the stage's step, at its place,
    configured from the YAML like every other stage (unknown keys refused), and off when disabled."""
    stages = {"classifier": {"enabled": False}, "long_title": {"max_words": 5}}
    (tmp_path / "x.jsonl").write_text('{"id": "1", "text": "a listing"}\n')
    data = {
        "output_dir": str(tmp_path / "out"),
        "sources": [{"name": "s", "path": str(tmp_path / "x.jsonl")}],
    }
    config = from_mapping(CurationConfig, {**data, "stages": {"classifier": {"enabled": False}}}, "config")
    config.stages = from_mapping(_StagesWithLongTitle, stages, "config.stages")  # the one added field
    steps = PipelineBuilder(config).filter_steps()
    names = [getattr(step, "name", type(step).__name__) for step in steps]
    assert names[-2:] == ["curation:pii", "curation:long_title"] and steps[-1].settings.max_words == 5
    with pytest.raises(ConfigError, match="long_title: unknown field 'max_word' .*did you mean 'max_words'"):
        from_mapping(_StagesWithLongTitle, {"long_title": {"max_word": 5}}, "config.stages")
    config.stages.long_title.enabled = False
    assert "curation:long_title" not in [
        getattr(s, "name", "") for s in PipelineBuilder(config).filter_steps()
    ]
