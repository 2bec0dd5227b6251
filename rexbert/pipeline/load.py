"""Loading a run config for `rexbert run`: read and type-check it, then build every stage's own config once
(each corpus's curation config, the pretraining recipe with its overrides, the evaluation budgets, the card
options) against a placeholder output directory, so a mistake anywhere stops the run before the first
stage, in one line naming the field."""

from __future__ import annotations

from pathlib import Path

from curation.config import config_from_dict
from hub_cards import CardOptions, DatasetCardOptions
from rexbert_core.typed_config import deep_merge

from .config import RunConfig, read_run_config
from .layout import Layout
from .stages import curation_config, eval_budgets, pretrain_recipe

__all__ = ["load_run_config", "validate_stage_configs"]


def load_run_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config (default: the embedded one), apply `dotted.key=value` overrides, type-check every
    section and build every stage's own config once, so that a mistake anywhere is found now."""
    config = read_run_config(path, overrides)
    validate_stage_configs(config)
    return config


def validate_stage_configs(config: RunConfig) -> None:
    """Build what each stage will be handed, against a placeholder output directory."""
    layout = Layout(Path("/rexbert-run-config-check"))
    placeholder = {
        "output_dir": str(layout.root),
        "sources": [{"name": "placeholder", "path": "placeholder"}],
    }
    settings = deep_merge(
        deep_merge(config.curation.settings, placeholder), {"stages": {"classifier": {"enabled": False}}}
    )
    config_from_dict(settings, where="run config curation.settings")
    for corpus in config.curation.corpora:
        curation_config(
            config, layout, corpus, trained_classifier={"model": "classifier.bin", "threshold": 0.5}
        )
    pretrain_recipe(config, layout)
    eval_budgets(config)
    CardOptions(**config.cards.model)
    DatasetCardOptions(**config.cards.dataset)
