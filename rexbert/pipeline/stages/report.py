"""`report`: report.md, one page for a finished run: what ran and for how long, then the section each stage
declares (corpora, phases, model, scores), with links to every artefact, relative to the run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rexbert_core.safe_outputs import atomic_write_text
from rexbert_core.tables import markdown_table

from ..stage import RunPlan, Stage

__all__ = ["STAGE", "link", "read_json", "report_markdown"]


def link(plan: RunPlan, path: str | Path, text: str | None = None) -> str:
    """A Markdown link to `path`, relative to the run directory (marked missing when it is not there)."""
    path = Path(path)
    relative = path.relative_to(plan.layout.root).as_posix()
    return f"[{text or relative}]({relative})" if path.exists() else f"{text or relative} (missing)"


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def report_markdown(plan: RunPlan) -> str:
    """The page: the stages' times, then every stage's own section, in stage order."""
    markers = plan.layout.markers(plan.stage_names)
    timings = [[name, f"{m['seconds']:.1f}", m["finished"]] for name, m in markers.items()]
    if "report" not in markers:
        timings.append(["report", "-", "now"])
    data = (
        "the embedded sample corpus and evaluation sets (generated text, so the scores only show that the "
        "pipeline works end to end)."
        if plan.config.data.sample_corpus
        else "the sources named in the config."
    )
    lines = [
        "# RexBERT run report",
        "",
        f"Output directory `{plan.layout.root}`; config {link(plan, plan.layout.config)}. Data: {data}",
        "",
        "## Stages",
        "",
        markdown_table(["stage", "seconds", "finished"], timings),
        "",
    ]
    for stage in plan.stages:
        if stage.report is not None:
            lines += stage.report(plan)
    return "\n".join(lines).rstrip("\n") + "\n"


def run(job: None, plan: RunPlan) -> dict:
    atomic_write_text(plan.layout.report, report_markdown(plan))
    return {"report": str(plan.layout.report)}


STAGE = Stage("report", run, outputs=("report",))
