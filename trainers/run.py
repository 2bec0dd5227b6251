"""`rexbert run`: the whole job on one config, from raw text to a model ready to publish.

    rexbert run --output runs/demo                                   # embedded default, offline, minutes on CPU
    rexbert run --config trainers/configs/run_shared_data.yaml --output runs/shared
    rexbert run --output runs/demo --set pretrain.overrides.phases.general.steps=200

Stages, in order; each writes `stages/<stage>.done` when it finishes, so rerunning the same command
after an interruption skips finished stages, and the pretraining stage continues an interrupted phase
from its last complete checkpoint (data stream and RNG state included, via `rexbert pretrain --resume`):

    data        the embedded sample corpus, classifier examples and evaluation sets (sample mode only)
    classifier  the fastText e-commerce classifier, trained on labelled examples (`curation.classifier`)
    curate      the datatrove curation pipeline -> curation/corpus/*.parquet + curation/report/
    pretrain    the three phases of a recipe on the curated corpus -> pretrain/phase<N>-<name>/
    model       the final model directory, with its training summary and sentence-transformers config
    eval        the evaluation suites -> eval/results.{json,md,png}
    cards       model card (model/README.md) and dataset card (curation/README.md)
    report      report.md: one page linking everything

The config (YAML; `trainers/configs/run_default.yaml` when `--config` is not given) has one section
per stage; see that file for every field. A config may start with `extends: <file>` (relative to
itself, or the name of a config in `trainers/configs/`) and override by section. Relative data paths
are taken from the working directory. The resolved config is saved as `run_config.yaml` in the
output directory, and a rerun with a different config into the same directory is refused.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .recipes import apply_overrides, deep_merge, read_extending_yaml, read_recipe_dict

logger = logging.getLogger("rexbert.run")

CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "run_default.yaml"
SECTIONS = ("seed", "output", "threads", "data", "classifier", "curation", "pretrain", "eval", "cards")
STAGES = ("data", "classifier", "curate", "pretrain", "model", "eval", "cards", "report")


class RunConfigError(ValueError):
    """A run config that cannot be run as written; the message names the field."""


# ---- config ---------------------------------------------------------------------------------------


def _resolve_config_path(path: str | Path) -> Path:
    """A run config file, or the name of a shipped one in `trainers/configs/`."""
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / path.name).is_file():
        path = CONFIG_DIR / path.name
    if not path.is_file():
        raise FileNotFoundError(f"run config not found: {path}")
    return path


def _read_config_dict(path: Path) -> dict:
    """The mapping of a run config, merged over the config it `extends`."""
    return read_extending_yaml(path, _resolve_config_path, RunConfigError, "run config")


def load_run_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """Read a run config (default: the embedded one), apply `dotted.key=value` overrides, check sections."""
    config = apply_overrides(_read_config_dict(Path(path) if path else DEFAULT_CONFIG), overrides or [])
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise RunConfigError(f"unknown section(s) {unknown}; a run config has {list(SECTIONS)}")
    for section in ("data", "curation", "pretrain", "eval"):
        if not isinstance(config.get(section), dict):
            raise RunConfigError(f"section {section!r} is missing or not a mapping")
    if not isinstance(config["curation"].get("corpora"), dict) or not config["curation"]["corpora"]:
        raise RunConfigError("curation.corpora: name at least one corpus to curate (e.g. ecom, general)")
    data = config["data"]
    if not data.get("sample_corpus") and not data.get("sources"):
        raise RunConfigError("data: set sample_corpus: true or list curation `sources`")
    if not data.get("sample_corpus") and not config["eval"].get("data"):
        raise RunConfigError(
            "eval.data: without the sample corpus, name the evaluation files (esci, glue, ner)"
        )
    return config


# ---- output layout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where every artefact of a run lives, relative to the output directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "run_config.yaml"

    @property
    def stages(self) -> Path:
        return self.root / "stages"

    @property
    def sample_corpus(self) -> Path:
        return self.root / "data" / "corpus"

    @property
    def sample_eval(self) -> Path:
        return self.root / "data" / "eval"

    @property
    def classifier_examples(self) -> Path:
        return self.root / "data" / "classifier_examples.jsonl"

    @property
    def classifier(self) -> Path:
        return self.root / "classifier" / "ecom_classifier.bin"

    @property
    def curation(self) -> Path:
        return self.root / "curation"

    def corpus(self, name: str) -> Path:
        """The output directory of curated corpus `name` (corpus/ shards, report/, README.md card)."""
        return self.curation / name

    def corpus_report(self, name: str) -> Path:
        return self.corpus(name) / "report" / "report.json"

    @property
    def pretrain(self) -> Path:
        return self.root / "pretrain"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def done_marker(self, stage: str) -> Path:
        return self.stages / f"{stage}.done"


# ---- stages --------------------------------------------------------------------------------------


def stage_data(config: dict, layout: Layout) -> dict:
    """Sample mode: write the embedded corpus, classifier examples and evaluation sets."""
    if not config["data"].get("sample_corpus"):
        return {"skipped": "data.sample_corpus is false"}
    from curation.sample_corpus import write_classifier_examples, write_sample_corpus, write_sample_eval_data

    seed = int(config.get("seed", 0))
    corpus = write_sample_corpus(layout.sample_corpus, seed=seed)
    examples = write_classifier_examples(layout.classifier_examples, seed=seed + 1)
    evaluation = write_sample_eval_data(layout.sample_eval)
    return {
        "corpus": [str(p) for p in corpus],
        "classifier_examples": str(examples),
        "eval": {k: str(v) for k, v in evaluation.items()},
    }


def _classifier_settings(config: dict) -> dict:
    return config.get("classifier") or {}


def corpus_settings(config: dict, corpus: str) -> dict:
    """`curation.settings` merged with `curation.corpora.<corpus>` (its `sources` list included)."""
    return deep_merge(
        copy.deepcopy(config["curation"].get("settings") or {}),
        copy.deepcopy(config["curation"]["corpora"][corpus] or {}),
    )


def _needs_trained_classifier(config: dict, corpus: str) -> bool:
    classifier = corpus_settings(config, corpus).get("stages", {}).get("classifier", {})
    return classifier.get("enabled", True) is not False and not classifier.get("model")


def stage_classifier(config: dict, layout: Layout) -> dict:
    """Train the e-commerce classifier when a corpus enables that stage without naming a model."""
    if not any(_needs_trained_classifier(config, corpus) for corpus in config["curation"]["corpora"]):
        return {"skipped": "no corpus runs the classifier stage without a model"}
    from curation.classifier import TrainSettings, train_and_evaluate

    settings = _classifier_settings(config)
    texts, labels, groups = classifier_examples(config, layout)
    summary = train_and_evaluate(
        texts, labels, layout.classifier, settings=TrainSettings(**settings.get("train", {})), groups=groups
    )
    return {
        "model": str(layout.classifier),
        "threshold": summary["threshold"],
        "sizes": summary["sizes"],
        "test": summary.get("test"),
    }


def classifier_examples(config: dict, layout: Layout) -> tuple[list[str], list[bool], list[str] | None]:
    """(texts, is-e-commerce labels, source groups) from `classifier.shared_pool` (the labelled pool of
    the shared data folder), `classifier.examples` (jsonl/parquet with text + label) or, in sample
    mode, the generated examples."""
    settings = _classifier_settings(config)
    if settings.get("shared_pool"):
        from curation.pool import load_shared_pool

        pool = load_shared_pool(
            settings["shared_pool"],
            max_per_source=settings.get("max_per_source", 4000),
            seed=int(config.get("seed", 0)),
        )
        return [e.text for e in pool], [e.is_ecommerce for e in pool], [e.source for e in pool]
    from curation.readers import iter_records

    files = settings.get("examples") or (
        [str(layout.classifier_examples)] if config["data"].get("sample_corpus") else None
    )
    if not files:
        raise RunConfigError(
            "classifier: name `examples` (jsonl/parquet of text + label) or `shared_pool`, give "
            "curation.stages.classifier.model, or disable that stage"
        )
    positive = settings.get("positive_label", "ecommerce")
    texts, labels = [], []
    for path in [files] if isinstance(files, str) else files:
        for row, record in enumerate(iter_records(str(path))):
            if not isinstance(record.get("text"), str) or "label" not in record:
                raise RunConfigError(
                    f"classifier.examples: {path} row {row} needs a 'text' string and a 'label'"
                )
            texts.append(record["text"])
            labels.append(str(record["label"]) == positive)
    return texts, labels, None


def all_sources(config: dict, layout: Layout) -> list[dict]:
    """Every named input source (curation `SourceConfig` mappings): the sample corpus files in sample
    mode, then `data.sources`."""
    sources = list(copy.deepcopy(config["data"].get("sources") or []))
    if config["data"].get("sample_corpus"):
        from curation.sample_corpus import DOMAIN_OF_SOURCE, SOURCES

        sources = [
            {
                "name": s,
                "path": str(layout.sample_corpus / f"{s}.jsonl"),
                "format": "jsonl",
                "domain": DOMAIN_OF_SOURCE[s],
            }
            for s in SOURCES
        ] + sources
    return sources


def curation_config_dict(config: dict, layout: Layout, corpus: str) -> dict:
    """The curation pipeline config of one corpus: `curation.settings` merged with
    `curation.corpora.<corpus>` (minus its `sources` list), its sources, output directory and classifier."""
    curation = corpus_settings(config, corpus)
    wanted = curation.pop("sources", None)
    sources = all_sources(config, layout)
    unknown = sorted(set(wanted or []) - {s["name"] for s in sources})
    if unknown:
        raise RunConfigError(
            f"curation.corpora.{corpus}.sources: unknown sources {unknown}; "
            f"known: {[s['name'] for s in sources]}"
        )
    curation["sources"] = [s for s in sources if wanted is None or s["name"] in wanted]
    curation["output_dir"] = str(layout.corpus(corpus))
    if _needs_trained_classifier(config, corpus):
        trained = _read_done(layout, "classifier")
        if "model" not in trained:
            raise RunConfigError(
                f"curation.corpora.{corpus}: the classifier stage has not trained a model yet"
            )
        classifier = curation.setdefault("stages", {}).setdefault("classifier", {})
        classifier["model"] = trained["model"]
        classifier.setdefault("threshold", trained["threshold"])
    return curation


def stage_curate(config: dict, layout: Layout) -> dict:
    """Run the datatrove curation pipeline once per corpus into `curation/<corpus>/` (shards + report)."""
    from curation.config import config_from_dict
    from curation.pipeline import run_pipeline

    outputs = {}
    for corpus in config["curation"]["corpora"]:
        curation_config = config_from_dict(curation_config_dict(config, layout, corpus), base_dir=Path.cwd())
        report = run_pipeline(
            curation_config,
            on_step=lambda i, n, step, corpus=corpus: logger.info("curate %s %d/%d: %s", corpus, i, n, step),
        )
        if not report["totals"].get("docs_kept"):
            raise RuntimeError(
                f"curation of {corpus!r} kept no documents; see "
                f"{layout.corpus(corpus) / 'report' / 'report.md'}"
            )
        outputs[corpus] = {
            "totals": report["totals"],
            "shards": sorted(str(p) for p in (layout.corpus(corpus) / "corpus").glob("*")),
        }
    return outputs


def pretrain_recipe_dict(config: dict, layout: Layout) -> dict:
    """The recipe for the pretraining stage: `pretrain.recipe` merged with `pretrain.overrides`, each
    source named in `pretrain.sources` reading the shards of its curated corpus."""
    settings = config["pretrain"]
    recipe = deep_merge(read_recipe_dict(settings.get("recipe", "tiny")), settings.get("overrides") or {})
    for source, corpus in (settings.get("sources") or {}).items():
        if corpus not in config["curation"]["corpora"]:
            raise RunConfigError(
                f"pretrain.sources.{source}: {corpus!r} is not a curated corpus "
                f"({list(config['curation']['corpora'])})"
            )
        kept = {
            k: v
            for k, v in recipe.get("sources", {}).get(source, {}).items()
            if k not in ("data_files", "dataset", "dataset_config", "sample_corpus", "where")
        }
        recipe.setdefault("sources", {})[source] = {
            **kept,
            "data_files": str(layout.corpus(corpus) / "corpus" / "*.parquet"),
        }
    recipe["seed"] = recipe.get("seed", int(config.get("seed", 0)))
    return recipe


def set_aside_incomplete_checkpoints(pretrain_dir: Path) -> list[Path]:
    """Rename checkpoints an interruption left half-written (no `trainer_state.json` or mixture state)
    to `incomplete-checkpoint-N`, so resuming starts from the last complete one. Returns the renamed."""
    from .mixture import MIXTURE_STATE_FILENAME

    renamed = []
    for checkpoint in sorted(pretrain_dir.glob("phase*/checkpoints/checkpoint-*")):
        if not all((checkpoint / name).is_file() for name in ("trainer_state.json", MIXTURE_STATE_FILENAME)):
            target = checkpoint.with_name(f"incomplete-{checkpoint.name}")
            shutil.rmtree(target, ignore_errors=True)
            checkpoint.rename(target)
            logger.warning("set aside the incomplete checkpoint %s", checkpoint)
            renamed.append(target)
    return renamed


def stage_pretrain(config: dict, layout: Layout) -> dict:
    """The recipe's phases on the curated corpus; resumes from the last complete checkpoint."""
    from .pretrain import pretrain
    from .recipes import load_recipe

    layout.pretrain.mkdir(parents=True, exist_ok=True)
    recipe_path = layout.pretrain / "recipe.yaml"
    recipe_path.write_text(
        yaml.safe_dump(pretrain_recipe_dict(config, layout), sort_keys=False), encoding="utf-8"
    )
    recipe = load_recipe(recipe_path)
    set_aside_incomplete_checkpoints(layout.pretrain)
    summary = pretrain(recipe, layout.pretrain, resume=True)
    return {
        "phases": [
            {k: p[k] for k in ("phase", "name", "steps", "tokens", "final_loss")} for p in summary["phases"]
        ]
    }


def stage_model(config: dict, layout: Layout) -> dict:
    """`model/`: the last phase's weights, tokenizer, lexicon, training summary and a
    sentence-transformers (mean pooling) configuration."""
    from hub_cards.integrations import make_sentence_transformer

    shutil.rmtree(layout.model, ignore_errors=True)
    shutil.copytree(layout.pretrain / "model", layout.model)
    shutil.copy2(layout.pretrain / "training_summary.json", layout.model / "training_summary.json")
    make_sentence_transformer(layout.model, pooling="mean")
    return {"model": str(layout.model)}


def eval_data(config: dict, layout: Layout) -> dict[str, list[str]]:
    """{data key: paths} for the suites: `eval.data`, or the embedded sets in sample mode."""
    given = config["eval"].get("data")
    if given:
        return {
            key: [str(v) for v in (value if isinstance(value, list) else [value])]
            for key, value in given.items()
        }
    sets = _read_done(layout, "data")["eval"]
    return {
        "esci": [sets["esci_examples"], sets["esci_products"]],
        "glue": [sets["glue"]],
        "ner": [sets["ner"]],
    }


def eval_budgets(config: dict, suites: list[str]) -> dict:
    """Per-suite `Budget`s: the suite default, then `eval.budget.all`, then `eval.budget.<suite>`."""
    from eval_suites.runner import default_budget

    budget = config["eval"].get("budget") or {}
    unknown = sorted(set(budget) - set(suites) - {"all"})
    if unknown:
        raise RunConfigError(f"eval.budget: {unknown} are not configured suites ({suites})")
    return {
        suite: default_budget(suite).override(**{**budget.get("all", {}), **budget.get(suite, {})})
        for suite in suites
    }


def stage_eval(config: dict, layout: Layout) -> dict:
    """Every configured suite on `model/` -> eval/results.json, results.md and results.png."""
    from eval_suites.runner import comparison_plot, evaluate_model, results_document, write_results

    suites = list(config["eval"]["suites"])
    results = evaluate_model(
        str(layout.model),
        suites,
        eval_data(config, layout),
        eval_budgets(config, suites),
        glue_tasks=config["eval"].get("glue_tasks"),
    )
    document = results_document(str(layout.model), results)
    if config["data"].get("sample_corpus") and not config["eval"].get("data"):
        for record in document["suites"].values():  # say so wherever the scores are shown (cards included)
            record["dataset"]["name"] += " (generated sample set)"
    write_results(document, layout.eval)
    comparison_plot([document], layout.eval / "results.png")
    return {
        suite: {"main_metric": record["main_metric"], "value": record["metrics"][record["main_metric"]]}
        for suite, record in document["suites"].items()
    }


def stage_cards(config: dict, layout: Layout) -> dict:
    """The model card (from the training summary and results) and the dataset card (from the report)."""
    from hub_cards import CardOptions, DatasetCardOptions, write_dataset_card, write_model_card

    cards = config.get("cards") or {}
    model_card = write_model_card(
        layout.model, CardOptions(**cards.get("model", {})), results=layout.eval / "results.json"
    )
    dataset_cards = {}
    for corpus in config["curation"]["corpora"]:
        options = DatasetCardOptions(
            **{"pretty_name": f"RexBERT {corpus} corpus", **cards.get("dataset", {})}
        )
        dataset_cards[corpus] = str(write_dataset_card(layout.corpus(corpus), options))
    return {"model_card": str(model_card), "dataset_cards": dataset_cards}


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _link(layout: Layout, path: Path, text: str | None = None) -> str:
    relative = path.relative_to(layout.root).as_posix()
    return f"[{text or relative}]({relative})" if path.exists() else f"{text or relative} (missing)"


def report_markdown(config: dict, layout: Layout) -> str:
    """report.md: what ran, how long each stage took, the corpus, the phases, the scores, and links."""
    markers = {
        stage: json.loads(layout.done_marker(stage).read_text(encoding="utf-8"))
        for stage in STAGES
        if layout.done_marker(stage).is_file()
    }
    summary = json.loads((layout.model / "training_summary.json").read_text(encoding="utf-8"))
    results = json.loads((layout.eval / "results.json").read_text(encoding="utf-8"))
    sample = bool(config["data"].get("sample_corpus"))
    lines = [
        "# RexBERT run report",
        "",
        f"Output directory `{layout.root}`; config {_link(layout, layout.config)}. Data: "
        + (
            "the embedded sample corpus and evaluation sets (generated text, so the scores only show that "
            "the pipeline works end to end)."
            if sample
            else "the sources named in the config."
        ),
        "",
        "## Stages",
        "",
    ]
    lines += _table(
        ["stage", "seconds", "finished"],
        [[s, f"{m['seconds']:.1f}", m["finished"]] for s, m in markers.items()]
        + [["report", "-", "now"]] * ("report" not in markers),
    )
    lines += ["", "## Corpora", ""]
    for name in config["curation"]["corpora"]:
        corpus = json.loads(layout.corpus_report(name).read_text(encoding="utf-8"))
        totals, directory = corpus["totals"], layout.corpus(name)
        lines += [
            f"### {name}",
            "",
            f"{totals.get('docs_in', 0):,} documents in, {totals.get('docs_kept', 0):,} kept "
            f"({totals.get('tokens_kept', 0):,} tokens), {totals.get('docs_removed', 0):,} removed by "
            f"filters, {totals.get('docs_rejected', 0):,} rejected as bad input. Shards: "
            f"{_link(layout, directory / 'corpus')}; report: {_link(layout, directory / 'report' / 'report.md')}; "
            f"dataset card: {_link(layout, directory / 'README.md')}.",
            "",
        ]
        lines += _table(
            ["source", "documents in", "kept"],
            [
                [s, f"{v.get('docs_in', 0):,}", f"{v.get('docs_kept', 0):,}"]
                for s, v in sorted(corpus["sources"].items())
            ],
        ) + [""]
    lines += [
        "",
        "## Pretraining",
        "",
        f"Preset `{summary['preset']}`, recipe {_link(layout, layout.pretrain / 'recipe.yaml')}, curves "
        f"{_link(layout, layout.pretrain / 'training_curves.png')}.",
        "",
    ]
    lines += _table(
        ["phase", "name", "steps", "tokens", "seq len", "mask rate", "guided MLM", "final loss"],
        [
            [
                p["phase"],
                p["name"],
                p["steps"],
                f"{p['tokens']:,}",
                p["seq_len"],
                p["mask_rate"],
                p["guided_mlm"],
                f"{p['final_loss']:.4f}",
            ]
            for p in summary["phases"]
        ],
    )
    lines += [
        "",
        "## Evaluation",
        "",
        f"{_link(layout, layout.eval / 'results.json')}, {_link(layout, layout.eval / 'results.md')}, "
        f"{_link(layout, layout.eval / 'results.png')}.",
        "",
    ]
    lines += _table(
        ["suite", "dataset", "main metric", "score", "examples"],
        [
            [
                name,
                r["dataset"]["name"],
                r["main_metric"],
                f"{r['metrics'][r['main_metric']]:.4f}",
                r["n_examples"],
            ]
            for name, r in results["suites"].items()
        ],
    )
    lines += [
        "",
        "## Model",
        "",
        f"{_link(layout, layout.model)} (weights, tokenizer, saliency lexicon, sentence-transformers "
        f"config), model card {_link(layout, layout.model / 'README.md')}. Load it with:",
        "",
        "```python",
        "import modeling_rexbert  # registers the rexbert model type",
        "from transformers import AutoModel, AutoTokenizer",
        f'model = AutoModel.from_pretrained("{layout.model}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{layout.model}")',
        "```",
        "",
        f"Publish with `rexbert push model {layout.model} <repo_id>` and "
        f"`rexbert push dataset {layout.corpus('<corpus>')} <repo_id>`.",
    ]
    return "\n".join(lines) + "\n"


def stage_report(config: dict, layout: Layout) -> dict:
    """Write report.md."""
    layout.report.write_text(report_markdown(config, layout), encoding="utf-8")
    return {"report": str(layout.report)}


STAGE_FUNCTIONS: dict[str, Callable[[dict, Layout], dict]] = {
    "data": stage_data,
    "classifier": stage_classifier,
    "curate": stage_curate,
    "pretrain": stage_pretrain,
    "model": stage_model,
    "eval": stage_eval,
    "cards": stage_cards,
    "report": stage_report,
}


# ---- running ---------------------------------------------------------------------------------------


def _read_done(layout: Layout, stage: str) -> dict:
    marker = layout.done_marker(stage)
    return json.loads(marker.read_text(encoding="utf-8"))["outputs"] if marker.is_file() else {}


def _check_same_config(config: dict, layout: Layout) -> None:
    """Refuse to continue a run that was started with another config."""
    if not layout.config.is_file():
        return
    previous = yaml.safe_load(layout.config.read_text(encoding="utf-8"))
    if previous != config:
        changed = sorted(k for k in set(previous) | set(config) if previous.get(k) != config.get(k))
        raise RunConfigError(
            f"{layout.root} holds a run started with a different config (sections {changed} "
            "differ); use another --output, or --restart to start this one over"
        )


def restart(layout: Layout) -> None:
    """Remove what an earlier run wrote into the output directory (only the run's own paths)."""
    for path in (
        layout.stages,
        layout.root / "data",
        layout.classifier.parent,
        layout.curation,
        layout.pretrain,
        layout.model,
        layout.eval,
    ):
        shutil.rmtree(path, ignore_errors=True)
    for path in (layout.config, layout.report):
        path.unlink(missing_ok=True)


def run(config: dict, output: str | Path, *, stop_after: str | None = None) -> dict[str, dict]:
    """Run the stages not yet done, in order; returns each stage's outputs (from its done-marker)."""
    import torch

    layout = Layout(Path(output).resolve())
    layout.root.mkdir(parents=True, exist_ok=True)
    _check_same_config(config, layout)
    layout.config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    layout.stages.mkdir(exist_ok=True)
    last = STAGES.index(stop_after) if stop_after else len(STAGES) - 1
    threads = torch.get_num_threads()
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    try:
        return _run_stages(config, layout, STAGES[: last + 1])
    finally:
        torch.set_num_threads(threads)


def _run_stages(config: dict, layout: Layout, stages: tuple[str, ...]) -> dict[str, dict]:
    outputs = {}
    for index, stage in enumerate(stages, 1):
        marker = layout.done_marker(stage)
        if marker.is_file():
            logger.info("[%d/%d] %s: done earlier, skipping", index, len(STAGES), stage)
        else:
            logger.info("[%d/%d] %s ...", index, len(STAGES), stage)
            started = time.perf_counter()
            result = STAGE_FUNCTIONS[stage](config, layout)
            seconds = time.perf_counter() - started
            record = {
                "stage": stage,
                "seconds": round(seconds, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "outputs": result,
            }
            marker.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
            logger.info("[%d/%d] %s finished in %.1f s", index, len(STAGES), stage, seconds)
        outputs[stage] = _read_done(layout, stage)
    return outputs


# ---- CLI -----------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Curate -> pretrain (three phases) -> evaluate -> cards, into one output directory."
    parser.add_argument("--config", help=f"run config YAML (default: the embedded {DEFAULT_CONFIG.name})")
    parser.add_argument(
        "--output", help="output directory (default: the config's `output`, else runs/rexbert)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="KEY=VALUE",
        help="override a config field, e.g. pretrain.overrides.phases.general.steps=200",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard what an earlier run wrote into the output directory and start over",
    )
    parser.add_argument(
        "--stop-after", choices=STAGES, help="stop after this stage (rerun later to continue)"
    )


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_run_config(args.config, args.overrides)
    except (RunConfigError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    output = Path(args.output or config.get("output") or "runs/rexbert")
    if args.restart:
        restart(Layout(output))
    started = time.perf_counter()
    try:
        run(config, output, stop_after=args.stop_after)
    except RunConfigError as error:
        logger.error("%s", error)
        return 2
    logger.info("finished in %.1f s; open %s", time.perf_counter() - started, Layout(output).report)
    return 0
