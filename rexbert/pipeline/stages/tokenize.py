"""`tokenize`: the run's tokenizer into `tokenizer/` (the recipe's, or a BPE trained on the curated corpora
as the in-memory path trains it), and each recipe source's curated corpus as token shards into `tokens/`
(`curation.tokenize`)."""

from __future__ import annotations

from dataclasses import dataclass

from curation.tokenize import TokenizeConfig, tokenize_corpus
from trainers.recipes import Recipe
from trainers.sources import RecipeData, load_tokenizer

from ..config import RunConfig
from ..layout import Layout
from ..stage import RunPlan, Stage
from .pretrain import pretrain_recipe

__all__ = ["STAGE", "TokenizeJob"]


@dataclass(frozen=True)
class TokenizeJob:
    """`text_recipe`: the pretraining recipe reading the curated text (what the tokenizer is trained on);
    `shards`: what `rexbert tokenize` makes of the corpora."""

    text_recipe: Recipe
    shards: TokenizeConfig


def configure(config: RunConfig, layout: Layout) -> TokenizeJob | None:
    if not config.pretrain.tokenize:
        return None
    shards = TokenizeConfig(
        output_dir=str(layout.tokens),
        tokenizer=str(layout.tokenizer),
        sources={
            source: [layout.corpus(corpus).shards()] for source, corpus in config.pretrain.sources.items()
        },
        workers=config.pretrain.tokenize_workers,
    )
    return TokenizeJob(pretrain_recipe(config, layout, from_shards=False), shards)


def run(job: TokenizeJob | None, plan: RunPlan) -> dict:
    if job is None:
        return {"skipped": "pretrain.tokenize is false"}
    load_tokenizer(job.text_recipe.tokenizer, RecipeData(job.text_recipe)).save_pretrained(
        job.shards.tokenizer
    )
    manifest = tokenize_corpus(job.shards)
    return {
        "tokenizer": job.shards.tokenizer,
        "tokens": job.shards.output_dir,
        "sources": {
            name: {"documents": source.documents, "tokens": source.tokens, "shards": len(source.shards)}
            for name, source in manifest.sources.items()
        },
    }


STAGE = Stage("tokenize", run, outputs=("tokenizer", "tokens"), section="pretrain", configure=configure)
