"""The stages of `rexbert run`, one function each, in order. A stage takes the run config and the output
layout, calls one library, and returns what it produced (recorded in its done-marker):

    data        the generated sample corpus, classifier examples and evaluation sets (`sample_corpus`)
    classifier  the fastText e-commerce classifier (`curation.classifier`)
    curate      the datatrove curation pipeline, once per corpus (`curation.pipeline`)
    tokenize    the run's tokenizer, and the curated corpora as token shards (`curation.tokenize`)
    pretrain    the recipe's phases on the curated corpora (`trainers.pretrain`)
    model       the final model directory with a sentence-transformers configuration (`hub_cards`)
    eval        the evaluation suites (`eval_suites.runner`)
    cards       model card and dataset cards (`hub_cards`)
    report      report.md (`rexbert.pipeline.report`)

`curation_config`, `pretrain_recipe` and `eval_budgets` turn the run config into what the libraries
take; `load_run_config` calls them too, so their checks run before the first stage.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

from curation.config import CurationConfig, config_from_dict
from rexbert_core.typed_config import ConfigError, DataError, RunError, deep_merge, to_mapping

from .config import RunConfig
from .layout import Layout

__all__ = [
    "STAGES",
    "STAGE_FUNCTIONS",
    "classifier_examples",
    "curation_config",
    "eval_budgets",
    "eval_data",
    "pretrain_recipe",
]

logger = logging.getLogger("rexbert.run")


# ---- data ------------------------------------------------------------------------------------------


def stage_data(config: RunConfig, layout: Layout) -> dict:
    """Sample mode: write the generated corpus (with its `sources.json`), classifier examples and
    evaluation sets into `data/`."""
    if not config.data.sample_corpus:
        return {"skipped": "data.sample_corpus is false"}
    from rexbert_core.sample_corpus import (
        MANIFEST_FILENAME,
        write_classifier_examples,
        write_sample_corpus,
        write_sample_eval_data,
    )

    corpus = write_sample_corpus(layout.sample_corpus, seed=config.seed)
    examples = write_classifier_examples(layout.classifier_examples, seed=config.seed + 1)
    evaluation = write_sample_eval_data(layout.sample_eval)
    return {
        "corpus": [str(p) for p in corpus],
        "manifest": str(layout.sample_corpus / MANIFEST_FILENAME),
        "classifier_examples": str(examples),
        "eval": {k: str(v) for k, v in evaluation.items()},
    }


# ---- classifier ------------------------------------------------------------------------------------


def stage_classifier(config: RunConfig, layout: Layout) -> dict:
    """Train the e-commerce classifier when a corpus enables that stage without naming a model."""
    if not any(config.needs_trained_classifier(corpus) for corpus in config.curation.corpora):
        return {"skipped": "no corpus runs the classifier stage without a model"}
    from curation.classifier import train_and_evaluate

    texts, labels, groups = classifier_examples(config, layout)
    summary = train_and_evaluate(
        texts, labels, layout.classifier, settings=config.classifier.train, groups=groups
    )
    return {
        "model": str(layout.classifier),
        "threshold": summary["threshold"],
        "sizes": summary["sizes"],
        "test": summary.get("test"),
    }


def classifier_examples(config: RunConfig, layout: Layout) -> tuple[list[str], list[bool], list[str] | None]:
    """(texts, is-e-commerce labels, source groups) from `classifier.shared_pool` (the labelled pool of
    the shared data folder), `classifier.examples` (jsonl/parquet with text + label) or, in sample
    mode, the generated examples."""
    settings = config.classifier
    if settings.shared_pool:
        from curation.pool import load_shared_pool

        pool = load_shared_pool(
            settings.shared_pool, max_per_source=settings.max_per_source, seed=config.seed
        )
        return [e.text for e in pool], [e.is_ecommerce for e in pool], [e.source for e in pool]
    from curation.readers import iter_records

    files = settings.examples or ([str(layout.classifier_examples)] if config.data.sample_corpus else None)
    if not files:
        raise ConfigError(
            "run config classifier: name `examples` (jsonl/parquet of text + label) or `shared_pool`, give "
            "curation.settings.stages.classifier.model, or disable that stage"
        )
    texts, labels = [], []
    for path in [files] if isinstance(files, str) else files:
        for row, record in enumerate(iter_records(str(path))):
            if not isinstance(record.get("text"), str) or "label" not in record:
                raise DataError(f"classifier.examples: {path} row {row} needs a 'text' string and a 'label'")
            texts.append(record["text"])
            labels.append(str(record["label"]) == settings.positive_label)
    return texts, labels, None


# ---- curate ----------------------------------------------------------------------------------------


def all_sources(config: RunConfig, layout: Layout) -> list[dict]:
    """Every named input source (curation `SourceConfig` mappings): in sample mode the files the data
    stage wrote (from their `sources.json`; what it will write, before it has run), then `data.sources`."""
    sources = [to_mapping(s) for s in config.data.sources]
    if config.data.sample_corpus:
        from rexbert_core.sample_corpus import MANIFEST_FILENAME, corpus_manifest, read_manifest

        written = (layout.sample_corpus / MANIFEST_FILENAME).is_file()
        sample = read_manifest(layout.sample_corpus) if written else corpus_manifest(layout.sample_corpus)
        sources = sample + sources
    return sources


def curation_config(
    config: RunConfig, layout: Layout, corpus: str, trained_classifier: dict | None = None
) -> CurationConfig:
    """The curation config of one corpus: `curation.settings` merged with `curation.corpora.<corpus>`, its
    sources, its output directory and, where the corpus runs the classifier stage without a model, the
    classifier the classifier stage trained (`trained_classifier`: its done-marker outputs)."""
    settings = config.corpus_settings(corpus)
    wanted = settings.pop("sources", None)
    sources = all_sources(config, layout)
    unknown = sorted(set(wanted or []) - {s["name"] for s in sources})
    if unknown:
        raise ConfigError(
            f"run config curation.corpora.{corpus}.sources: unknown sources {unknown}; "
            f"known: {[s['name'] for s in sources]}"
        )
    settings["sources"] = [s for s in sources if wanted is None or s["name"] in wanted]
    settings["output_dir"] = str(layout.corpus(corpus))
    if config.needs_trained_classifier(corpus):
        trained = trained_classifier if trained_classifier is not None else layout.outputs_of("classifier")
        if "model" not in trained:
            raise ConfigError(f"curation.corpora.{corpus}: the classifier stage has not trained a model yet")
        classifier = settings.setdefault("stages", {}).setdefault("classifier", {})
        classifier["model"] = trained["model"]
        if classifier.get("threshold") is None:
            classifier["threshold"] = trained["threshold"]
    return config_from_dict(settings, where=f"run config curation.corpora.{corpus}")


def stage_curate(config: RunConfig, layout: Layout) -> dict:
    """Run the datatrove curation pipeline once per corpus into `curation/<corpus>/` (shards + report)."""
    from curation.run import run_pipeline

    outputs = {}
    for corpus in config.curation.corpora:
        report = run_pipeline(
            curation_config(config, layout, corpus),
            on_step=lambda i, n, step, corpus=corpus: logger.info("curate %s %d/%d: %s", corpus, i, n, step),
        )
        if report is None:
            raise ConfigError(
                "run config curation: `rexbert run` needs an executor that finishes before returning "
                "(local or ray); run Slurm curation with `rexbert curate run`"
            )
        if not report["totals"].get("docs_kept"):
            raise RunError(
                f"curation of {corpus!r} kept no documents; see {layout.corpus(corpus) / 'report' / 'report.md'}"
            )
        outputs[corpus] = {
            "totals": report["totals"],
            "shards": sorted(str(p) for p in (layout.corpus(corpus) / "corpus").glob("*")),
        }
    return outputs


# ---- pretrain --------------------------------------------------------------------------------------


def pretrain_recipe(config: RunConfig, layout: Layout, *, from_shards: bool | None = None):
    """The recipe of the pretraining stage: `pretrain.recipe` merged with `pretrain.overrides`, each source
    named in `pretrain.sources` reading its curated corpus: the token shards of the tokenize stage (with
    the tokenizer they were made with) when `pretrain.tokenize` is on, else the corpus's parquet text."""
    from trainers.recipes import SourceSpec, read_recipe_dict, recipe_from_mapping, resolve_recipe_path

    settings = config.pretrain
    from_shards = settings.tokenize if from_shards is None else from_shards
    recipe = deep_merge(read_recipe_dict(settings.recipe), copy.deepcopy(settings.overrides))
    for source, corpus in settings.sources.items():
        if corpus not in config.curation.corpora:
            raise ConfigError(
                f"run config pretrain.sources.{source}: {corpus!r} is not a curated corpus "
                f"({list(config.curation.corpora)})"
            )
        kept = {
            k: v
            for k, v in (recipe.get("sources", {}).get(source) or {}).items()
            if k not in (*SourceSpec.KINDS, *SourceSpec.SELECTORS)
        }
        where = (
            {"shards": str(layout.tokens)} if from_shards else {"data_files": layout.corpus_shards(corpus)}
        )
        recipe.setdefault("sources", {})[source] = {**kept, **where}
    if from_shards:
        recipe["tokenizer"] = {"path": str(layout.tokenizer)}
    return recipe_from_mapping(
        recipe, where="run config pretrain", path=str(resolve_recipe_path(settings.recipe))
    )


# ---- tokenize --------------------------------------------------------------------------------------


def stage_tokenize(config: RunConfig, layout: Layout) -> dict:
    """`tokenizer/`: the recipe's tokenizer (trained on the curated corpora when the recipe says so, as the
    in-memory path trains it); `tokens/`: each recipe source's curated corpus as token shards."""
    if not config.pretrain.tokenize:
        return {"skipped": "pretrain.tokenize is false"}
    from curation.tokenize import TokenizeConfig, tokenize_corpus
    from trainers.sources import RecipeData, load_tokenizer

    text_recipe = pretrain_recipe(config, layout, from_shards=False)
    load_tokenizer(text_recipe.tokenizer, RecipeData(text_recipe)).save_pretrained(layout.tokenizer)
    settings = TokenizeConfig(
        output_dir=str(layout.tokens),
        tokenizer=str(layout.tokenizer),
        sources={
            source: [layout.corpus_shards(corpus)] for source, corpus in config.pretrain.sources.items()
        },
        workers=config.pretrain.tokenize_workers,
    )
    manifest = tokenize_corpus(settings)
    return {
        "tokenizer": str(layout.tokenizer),
        "tokens": str(layout.tokens),
        "sources": {
            name: {"documents": source.documents, "tokens": source.tokens, "shards": len(source.shards)}
            for name, source in manifest.sources.items()
        },
    }


def stage_pretrain(config: RunConfig, layout: Layout) -> dict:
    """The recipe's phases on the curated corpora; resumes from the last complete checkpoint."""
    from trainers.pretrain import pretrain

    summary = pretrain(pretrain_recipe(config, layout), layout.pretrain, resume=True)
    return {
        "phases": [
            {k: p[k] for k in ("phase", "name", "steps", "tokens", "final_loss")} for p in summary["phases"]
        ],
        "model": str(layout.pretrain / summary["model"]),
    }


# ---- model -----------------------------------------------------------------------------------------


def stage_model(config: RunConfig, layout: Layout) -> dict:
    """`model/`: the last phase's weights (hard-linked), tokenizer, lexicon, the training summary and a
    sentence-transformers (mean pooling) configuration."""
    import shutil

    from hub_cards.integrations import make_sentence_transformer
    from trainers.checkpoints import link_model_dir
    from trainers.pretrain import SUMMARY_FILENAME

    link_model_dir(layout.outputs_of("pretrain")["model"], layout.model)
    shutil.copy2(layout.pretrain / SUMMARY_FILENAME, layout.model / SUMMARY_FILENAME)
    make_sentence_transformer(layout.model, pooling="mean")
    return {"model": str(layout.model)}


# ---- eval ------------------------------------------------------------------------------------------


def eval_data(config: RunConfig, layout: Layout) -> dict[str, list[str]]:
    """{data key: paths} for the suites: `eval.data`, or the generated sets in sample mode."""
    if config.eval.data:
        return {key: list(value) for key, value in config.eval.data.items()}
    sets = layout.outputs_of("data")["eval"]
    return {
        "esci": [sets["esci_examples"], sets["esci_products"]],
        "glue": [sets["glue"]],
        "ner": [sets["ner"]],
    }


def eval_budgets(config: RunConfig) -> dict:
    """Per-suite `Budget`s: the suite default, then `eval.budget.all`, then `eval.budget.<suite>`."""
    from eval_suites.runner import default_budget

    budget = config.eval.budget
    return {
        suite: default_budget(suite).override(**{**budget.get("all", {}), **budget.get(suite, {})})
        for suite in config.eval.suites
    }


def stage_eval(config: RunConfig, layout: Layout) -> dict:
    """Every configured suite on `model/` -> eval/results.json, results.md and results.png."""
    from eval_suites.runner import comparison_plot, evaluate_model, results_document, write_results

    results = evaluate_model(
        str(layout.model),
        list(config.eval.suites),
        eval_data(config, layout),
        eval_budgets(config),
        glue_tasks=config.eval.glue_tasks,
    )
    document = results_document(str(layout.model), results)
    if config.data.sample_corpus and not config.eval.data:
        for record in document["suites"].values():  # say so wherever the scores are shown (cards included)
            record["dataset"]["name"] += " (generated sample set)"
    write_results(document, layout.eval)
    comparison_plot([document], layout.eval / "results.png")
    return {
        suite: {"main_metric": record["main_metric"], "value": record["metrics"][record["main_metric"]]}
        for suite, record in document["suites"].items()
    }


# ---- cards and report -------------------------------------------------------------------------------


def stage_cards(config: RunConfig, layout: Layout) -> dict:
    """The model card (from the training summary and results) and the dataset cards (from the reports)."""
    from hub_cards import CardOptions, DatasetCardOptions, write_dataset_card, write_model_card

    model_card = write_model_card(
        layout.model, CardOptions(**config.cards.model), results=layout.eval / "results.json"
    )
    dataset_cards = {}
    for corpus in config.curation.corpora:
        options = DatasetCardOptions(**{"pretty_name": f"RexBERT {corpus} corpus", **config.cards.dataset})
        dataset_cards[corpus] = str(write_dataset_card(layout.corpus(corpus), options))
    return {"model_card": str(model_card), "dataset_cards": dataset_cards}


def stage_report(config: RunConfig, layout: Layout) -> dict:
    """Write report.md."""
    from .report import report_markdown

    layout.report.write_text(report_markdown(config, layout, STAGES), encoding="utf-8")
    return {"report": str(layout.report)}


STAGE_FUNCTIONS: dict[str, Callable[[RunConfig, Layout], dict]] = {
    "data": stage_data,
    "classifier": stage_classifier,
    "curate": stage_curate,
    "tokenize": stage_tokenize,
    "pretrain": stage_pretrain,
    "model": stage_model,
    "eval": stage_eval,
    "cards": stage_cards,
    "report": stage_report,
}
STAGES = tuple(STAGE_FUNCTIONS)
