"""`pretrain`: the recipe's phases on the curated corpora into `pretrain/` (`trainers.pretrain`), resuming an
interrupted phase from its last complete checkpoint."""

from __future__ import annotations

import copy
from pathlib import Path

from rexbert_core.tables import markdown_table
from rexbert_core.typed_config import ConfigError, deep_merge, with_changes
from trainers.pretrain import RECIPE_FILENAME, SUMMARY_FILENAME, pretrain
from trainers.recipes import Recipe, SourceSpec, read_recipe_dict, recipe_from_mapping, resolve_recipe_path

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage
from .report import link, read_json

__all__ = ["STAGE", "pretrain_recipe"]


def pretrain_recipe(config: RunConfig, layout: Layout, *, from_shards: bool | None = None) -> Recipe:
    """The recipe of the pretraining stage: `pretrain.recipe` with `pretrain.overrides` merged over it (as
    `--set` would), each source named in `pretrain.sources` reading only its curated corpus (the token shards
    of the tokenize stage, with the tokenizer they were made with, when `pretrain.tokenize` is on; else the
    corpus's text), and the run's seed unless `pretrain.overrides` sets one."""
    settings = config.pretrain
    from_shards = settings.tokenize if from_shards is None else from_shards
    where = "run config pretrain"
    mapping = deep_merge(read_recipe_dict(settings.recipe), copy.deepcopy(settings.overrides))
    recipe = recipe_from_mapping(mapping, where=where, path=str(resolve_recipe_path(settings.recipe)))
    sources = dict(recipe.sources)
    for source, corpus in settings.sources.items():
        corpora = list(config.curation.corpora)
        if corpus not in corpora:
            raise ConfigError(f"{where}.sources.{source}: {corpus!r} is not a curated corpus ({corpora})")
        reads = (
            {"shards": str(layout.tokens)} if from_shards else {"data_files": layout.corpus(corpus).shards()}
        )
        sources[source] = sources.get(source, SourceSpec()).reading(f"{where}.sources.{source}", **reads)
    changes = {"sources": sources, "seed": config.seeds["pretrain"].value}
    if from_shards:
        changes["tokenizer"] = {"path": str(layout.tokenizer), "train_vocab_size": None}
    return with_changes(recipe, where, **changes)


def run(job: Recipe, plan: RunPlan) -> dict:
    summary = pretrain(job, plan.layout.pretrain, resume=True)
    return {
        "phases": [
            {k: p[k] for k in ("phase", "name", "steps", "tokens", "final_loss")} for p in summary["phases"]
        ],
        "model": str(plan.layout.pretrain / summary["model"]),
    }


def report_section(plan: RunPlan) -> list[str]:
    summary = read_json(plan.layout.pretrain / SUMMARY_FILENAME)
    pretrain_dir = Path(plan.layout.pretrain)
    header = ["phase", "name", "steps", "tokens", "seq len", "mask rate", "guided MLM", "final loss"]
    rows = [
        [p["phase"], p["name"], p["steps"], f"{p['tokens']:,}", p["seq_len"], p["mask_rate"], p["guided_mlm"]]
        + [f"{p['final_loss']:.4f}"]
        for p in summary["phases"]
    ]
    return [
        "## Pretraining",
        "",
        f"Preset `{summary['preset']}`, recipe {link(plan, pretrain_dir / RECIPE_FILENAME)}, curves "
        f"{link(plan, pretrain_dir / summary['plot']) if summary.get('plot') else '(none)'}.",
        "",
        markdown_table(header, rows),
        "",
    ]


STAGE = Stage(
    "pretrain",
    run,
    outputs=("pretrain",),
    section="pretrain",
    configure=pretrain_recipe,
    report=report_section,
)
