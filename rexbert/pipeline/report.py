"""report.md: one page for a finished run: what ran and for how long, the corpora, the pretraining
phases, the scores, and links to every artefact (relative to the run directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rexbert_core.tables import markdown_table

from .config import RunConfig
from .layout import Layout

__all__ = ["report_markdown"]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return markdown_table(header, rows).split("\n")


def _link(layout: Layout, path: Path, text: str | None = None) -> str:
    relative = path.relative_to(layout.root).as_posix()
    return f"[{text or relative}]({relative})" if path.exists() else f"{text or relative} (missing)"


def report_markdown(config: RunConfig, layout: Layout, stages: tuple[str, ...]) -> str:
    """report.md: what ran, how long each stage took, the corpus, the phases, the scores, and links."""
    markers = layout.markers(stages)
    summary = json.loads((layout.model / "training_summary.json").read_text(encoding="utf-8"))
    results = json.loads((layout.eval / "results.json").read_text(encoding="utf-8"))
    sample = config.data.sample_corpus
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
    for name in config.curation.corpora:
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
