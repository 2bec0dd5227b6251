"""`curate`: the datatrove curation pipeline, once per corpus, into `curation/<corpus>/` (`curation.run`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from curation.config import CurationConfig, SourceConfig, StagesConfig
from curation.layout import REPORT_MARKDOWN
from curation.run import run_pipeline
from rexbert_core.sample_corpus import MANIFEST_FILENAME, corpus_manifest, read_manifest
from rexbert_core.tables import markdown_table
from rexbert_core.typed_config import ConfigError, RunError, from_mapping, with_changes

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage
from .report import link

__all__ = ["STAGE", "all_sources", "curation_config"]

logger = logging.getLogger("rexbert.run")


def all_sources(config: RunConfig, layout: Layout) -> list[SourceConfig]:
    """Every named input source: in sample mode the files the data stage writes (from their `sources.json`;
    what it will write, before it has run), then `data.sources`."""
    sample = []
    if config.data.sample_corpus:
        written = (layout.sample_corpus / MANIFEST_FILENAME).is_file()
        manifest = read_manifest(layout.sample_corpus) if written else corpus_manifest(layout.sample_corpus)
        sample = [from_mapping(SourceConfig, entry, "sample corpus manifest") for entry in manifest]
    return sample + list(config.data.sources)


def curation_config(config: RunConfig, layout: Layout, corpus: str) -> CurationConfig:
    """The curation config of one corpus: `curation.settings` merged with `curation.corpora.<corpus>`, the
    sources it names, its output directory, the run's seed unless the corpus sets one, and, where the corpus
    runs the classifier stage without a model, the classifier the classifier stage trains (its threshold is
    read from the model's summary when the stage runs)."""
    where = f"run config curation.corpora.{corpus}"
    settings = config.corpus_settings(corpus)
    wanted, user_stages = settings.pop("sources", None), settings.pop("stages", None) or {}
    sources = all_sources(config, layout)
    unknown = sorted(set(wanted or []) - {s.name for s in sources})
    if unknown:
        raise ConfigError(f"{where}.sources: unknown sources {unknown}; known: {[s.name for s in sources]}")
    stages = from_mapping(StagesConfig, user_stages, f"{where}.stages")
    stages.minhash_dedup.seed = config.seeds[f"curate.{corpus}"].value
    if config.needs_trained_classifier(corpus):
        stages.classifier = with_changes(
            stages.classifier, f"{where}.stages.classifier", model=str(layout.classifier)
        )
    chosen = [s for s in sources if wanted is None or s.name in wanted]
    output = {"output_dir": layout.corpus(corpus).root, "sources": chosen, "stages": stages}
    return from_mapping(CurationConfig, {**settings, **output}, where)


def configure(config: RunConfig, layout: Layout) -> dict[str, CurationConfig]:
    return {corpus: curation_config(config, layout, corpus) for corpus in config.curation.corpora}


def run(job: dict[str, CurationConfig], plan: RunPlan) -> dict:
    outputs = {}
    for corpus, settings in job.items():
        report = run_pipeline(
            settings,
            on_step=lambda i, n, step, corpus=corpus: logger.info("curate %s %d/%d: %s", corpus, i, n, step),
        )
        if report is None:
            raise ConfigError(
                "run config curation: `rexbert run` needs an executor that finishes before returning "
                "(local or ray); run Slurm curation with `rexbert curate run`"
            )
        folders = plan.layout.corpus(corpus)
        if not report["totals"].get("docs_kept"):
            raise RunError(f"curation of {corpus!r} kept no documents; see {folders.report}")
        shards = sorted(str(p) for p in Path(folders.corpus).glob("*"))
        outputs[corpus] = {"totals": report["totals"], "shards": shards}
    return outputs


def report_section(plan: RunPlan) -> list[str]:
    cards = plan.layout.outputs_of("cards").get("dataset_cards", {})
    lines = ["## Corpora", ""]
    for name in plan.config.curation.corpora:
        folders = plan.layout.corpus(name)
        corpus = json.loads(Path(folders.report_file).read_text(encoding="utf-8"))
        totals = corpus["totals"]
        lines += [
            f"### {name}",
            "",
            f"{totals.get('docs_in', 0):,} documents in, {totals.get('docs_kept', 0):,} kept "
            f"({totals.get('tokens_kept', 0):,} tokens), {totals.get('docs_removed', 0):,} removed by "
            f"filters, {totals.get('docs_rejected', 0):,} rejected as bad input. Shards: "
            f"{link(plan, folders.corpus)}; report: {link(plan, f'{folders.report}/{REPORT_MARKDOWN}')}; "
            f"dataset card: {link(plan, cards.get(name, Path(folders.root) / 'README.md'))}.",
            "",
        ]
        rows = [
            [source, f"{v.get('docs_in', 0):,}", f"{v.get('docs_kept', 0):,}"]
            for source, v in sorted(corpus["sources"].items())
        ]
        lines += [markdown_table(["source", "documents in", "kept"], rows), ""]
    return lines


STAGE = Stage(
    "curate", run, outputs=("curation",), section="curation", configure=configure, report=report_section
)
