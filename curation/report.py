"""The corpus report: per-stage accounting, domain and source distributions, length histograms.

Built from datatrove's per-task stats files (``<out>/logs/<step list>/stats/<rank>.json``, which survive
resumed runs) and from the corpus shards themselves, by `WriteCorpusReport`, the one step of the last step
list, so it is written once every other list has finished, on any executor. The stage rows are derived from
the statistics of the steps that ran, in pipeline order: every step named ``curation:<stage>`` is a stage
(they all count alike, see `curation.steps.counting`), the readers together are the ``read`` row.
Writes ``<out>/report/report.json``, ``report.md`` and PNG plots under ``report/plots`` (paths in ``plots``
are relative to ``report/``), reading and writing through datatrove's `DataFolder`, so the output folder may
be local, s3://, hf:// or any fsspec URL, as for the shards the writers produce. Accounting identity: ``totals.docs_in == docs_kept + docs_removed +
docs_rejected``.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolder, get_datafolder
from datatrove.pipeline.base import PipelineStep

from curation.config import CurationConfig
from curation.layout import REPORT_FILENAME, REPORT_MARKDOWN, CorpusLayout
from rexbert_core.tables import markdown_table

__all__ = [
    "WriteCorpusReport",
    "build_report",
    "load_step_stats",
    "report_markdown",
    "stage_rows",
    "write_report",
]

READER_PREFIX = "curation:read:"
STAGE_PREFIX = "curation:"


def _total(value) -> float:
    return value["total"] if isinstance(value, dict) else value


def load_step_stats(logs_dir: str, step_lists: list[str]) -> dict[str, dict[str, float]]:
    """Stats summed over all tasks, keyed by step name (without datatrove's type prefix), in pipeline order:
    the step lists in the order given, each list's steps in the order they ran."""
    steps: dict[str, dict[str, float]] = {}
    logs = get_datafolder(logs_dir)
    for step_list in step_lists:
        for path in sorted(logs.glob(f"{step_list}/stats/*.json")):
            with logs.open(path, "r", encoding="utf-8") as handle:
                for step in json.load(handle):
                    totals = steps.setdefault(step["name"].split(": ", 1)[-1], defaultdict(float))
                    for key, value in step["stats"].items():
                        totals[key] += _total(value)
    return steps


def _int(stats: dict, key: str) -> int:
    return int(stats.get(key, 0))


def _read_row(readers: list[dict[str, float]]) -> dict:
    rejected: dict[str, int] = defaultdict(int)
    for stats in readers:
        for key, value in stats.items():
            if key.startswith("rejected_"):
                rejected[key.removeprefix("rejected_")] += int(value)
    read = sum(_int(s, "docs_read") for s in readers)
    tokens = sum(_int(s, "tokens_read") for s in readers)
    return {
        "name": "read",
        "docs_in": read + sum(rejected.values()),
        "docs_kept": read,
        "docs_removed": 0,
        "docs_rejected": sum(rejected.values()),
        "tokens_in": tokens,
        "tokens_kept": tokens,
        "reasons": dict(rejected),
    }


def _stage_row(name: str, stats: dict[str, float]) -> dict:
    row = {
        "name": name.removeprefix(STAGE_PREFIX),
        "docs_in": _int(stats, "total"),
        "docs_kept": _int(stats, "forwarded"),
        "docs_removed": _int(stats, "dropped"),
        "tokens_in": _int(stats, "tokens_in"),
        "tokens_kept": _int(stats, "tokens_kept"),
        "reasons": {k.removeprefix("dropped_"): int(v) for k, v in stats.items() if k.startswith("dropped_")},
    }
    edits = {
        k: int(v)
        for k, v in stats.items()
        if k.endswith("_replaced") or k in ("lines_removed", "docs_edited")
    }
    if edits:
        row["edits"] = edits
    return row


def stage_rows(steps: dict[str, dict[str, float]]) -> list[dict]:
    """The ``read`` row, then one row per counting stage that ran, in pipeline order."""
    readers = [stats for name, stats in steps.items() if name.startswith(READER_PREFIX)]
    rows = [_read_row(readers)]
    for name, stats in steps.items():
        if name.startswith(STAGE_PREFIX) and not name.startswith(READER_PREFIX):
            rows.append(_stage_row(name, stats))
    return rows


def corpus_rows(corpus_dir: str) -> list[dict]:
    """source, domain, token_count and character length of every corpus document."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    corpus, rows = get_datafolder(corpus_dir), []
    for path in sorted(corpus.glob("*.parquet")):
        with corpus.open(path, "rb") as handle:
            table = pq.read_table(handle, columns=["source", "domain", "token_count", "text"])
        lengths = pc.utf8_length(table["text"]).to_pylist()
        for row, chars in zip(table.drop(["text"]).to_pylist(), lengths):
            rows.append({**row, "chars": chars})
    for path in sorted(corpus.glob("*.jsonl.gz")):
        with corpus.open(path, "rt", compression="gzip", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                rows.append(
                    {
                        "source": record["source"],
                        "domain": record["domain"],
                        "token_count": record["token_count"],
                        "chars": len(record["text"]),
                    }
                )
    return rows


def _histogram(values: list[int], bins: int = 20) -> dict:
    import numpy as np

    if not values:
        return {"edges": [], "counts": []}
    edges = np.unique(np.geomspace(1, max(values) + 1, bins + 1).round().astype(int))
    counts, edges = np.histogram(values, bins=edges)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def duplicate_ids(layout: CorpusLayout) -> int:
    """Documents of the corpus whose id another task's document already has: the entries datatrove's exact
    dedup finder wrote for the id signatures (4 bytes each), 0 before the `id_check` step list ran."""
    folder = get_datafolder(layout.id_dups)
    if not folder.exists(""):
        return 0
    return sum(folder.size(path) // 4 for path in folder.list_files(glob_pattern="**/*.c4_dup"))


def build_report(config: CurationConfig, step_lists: list[str]) -> dict:
    """The report of the run in `config.output_dir` whose step lists ran in the order `step_lists`."""
    layout = CorpusLayout(config.output_dir)
    steps = load_step_stats(layout.logs, step_lists)
    stages = stage_rows(steps)
    docs = corpus_rows(layout.corpus)
    domains: dict[str, dict] = defaultdict(lambda: {"docs": 0, "tokens": 0})
    kept_by_source: dict[str, dict] = defaultdict(lambda: {"docs": 0, "tokens": 0})
    for row in docs:
        domains[row["domain"]]["docs"] += 1
        domains[row["domain"]]["tokens"] += row["token_count"] or 0
        kept_by_source[row["source"]]["docs"] += 1
        kept_by_source[row["source"]]["tokens"] += row["token_count"] or 0
    sources = {}
    for source in config.sources:
        s = steps.get(f"{READER_PREFIX}{source.name}", {})
        rejected = _int(s, "rejected")
        docs_in = _int(s, "docs_read") + rejected
        kept = kept_by_source[source.name]["docs"]
        sources[source.name] = {
            "docs_in": docs_in,
            "docs_rejected": rejected,
            "docs_kept": kept,
            "tokens_kept": kept_by_source[source.name]["tokens"],
            "kept_fraction": kept / docs_in if docs_in else 0.0,
        }
    totals = {
        "docs_in": stages[0]["docs_in"],
        "docs_kept": len(docs),
        "docs_removed": sum(r["docs_removed"] for r in stages),
        "docs_rejected": stages[0]["docs_rejected"],
        "tokens_in": stages[0]["tokens_in"],
        "tokens_kept": sum(d["token_count"] or 0 for d in docs),
        "duplicate_ids": duplicate_ids(layout),  # kept: ids are the user's; counted so they are known
    }
    totals["accounting_ok"] = (
        totals["docs_in"] == totals["docs_kept"] + totals["docs_removed"] + totals["docs_rejected"]
    )
    return {  # no local path: the report is published with the corpus
        "token_counter": config.token_counter
        if config.token_counter == "words"
        else Path(config.token_counter).name,
        "stages": stages,
        "domains": dict(sorted(domains.items(), key=lambda kv: -kv[1]["docs"])),
        "sources": sources,
        "totals": totals,
        "lengths": {
            "tokens": _histogram([d["token_count"] or 0 for d in docs]),
            "chars": _histogram([d["chars"] for d in docs]),
            "tokens_by_source": {
                name: _histogram([d["token_count"] or 0 for d in docs if d["source"] == name])
                for name in sources
                if sources[name]["docs_kept"]
            },
        },
        "plots": [],
    }


def write_report(config: CurationConfig, step_lists: list[str]) -> dict:
    """Build the report and write report.json, report.md and the plots; returns the report."""
    report = build_report(config, step_lists)
    report_dir = get_datafolder(CorpusLayout(config.output_dir).report)
    report["plots"] = write_plots(report, report_dir)
    with report_dir.open(REPORT_FILENAME, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    with report_dir.open(REPORT_MARKDOWN, "w", encoding="utf-8") as handle:
        handle.write(report_markdown(report))
    return report


def write_plots(report: dict, report_dir: DataFolder) -> list[str]:
    """Domain docs, tokens per domain, length histogram and per-stage kept/removed bars, as PNGs under
    `plots/` of the report folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig, name):
        fig.tight_layout()
        with report_dir.open(f"plots/{name}", "wb") as handle:
            fig.savefig(handle, dpi=110, format="png")
        plt.close(fig)
        written.append(f"plots/{name}")

    domains = list(report["domains"].items())[:30]
    for key, name, title in (
        ("docs", "domain_distribution.png", "Documents per domain"),
        ("tokens", "tokens_per_domain.png", "Tokens per domain"),
    ):
        fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(domains), 3) + 1))
        ax.barh([d for d, _ in domains][::-1], [v[key] for _, v in domains][::-1], color="#3b7dd8")
        ax.set_title(title)
        save(fig, name)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    hist = report["lengths"]["tokens"]
    if hist["counts"]:
        ax.stairs(hist["counts"], hist["edges"], fill=True, color="#d0dcf0", label="all sources")
        for name, per_source in report["lengths"]["tokens_by_source"].items():
            ax.stairs(per_source["counts"], per_source["edges"], label=name)
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    counter = os.path.basename(report["token_counter"])
    ax.set(title=f"Document length (tokens: {counter})", xlabel="tokens", ylabel="documents")
    save(fig, "length_histogram.png")
    stages = report["stages"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = [s["name"] for s in stages]
    ax.bar(names, [s["docs_kept"] for s in stages], label="kept", color="#3b7dd8")
    ax.bar(
        names,
        [s["docs_removed"] + s.get("docs_rejected", 0) for s in stages],
        bottom=[s["docs_kept"] for s in stages],
        label="removed / rejected",
        color="#e07b39",
    )
    ax.set_title("Documents kept and removed per stage")
    ax.tick_params(axis="x", rotation=30)
    ax.legend()
    save(fig, "stages.png")
    return written


def report_markdown(report: dict) -> str:
    t = report["totals"]
    parts = [
        "# Curation report",
        "",
        (
            f"Input records {t['docs_in']:,} = kept {t['docs_kept']:,} + removed {t['docs_removed']:,} "
            f"+ rejected {t['docs_rejected']:,}; tokens ({report['token_counter']}) kept "
            f"{t['tokens_kept']:,} of {t['tokens_in']:,}."
            + (
                f" {t['duplicate_ids']:,} kept documents repeat an id another input file's document has."
                if t.get("duplicate_ids")
                else ""
            )
        ),
        "",
        "## Stages",
        "",
        markdown_table(
            ["stage", "docs in", "kept", "removed", "tokens in", "tokens kept", "reasons"],
            [
                [
                    s["name"],
                    s["docs_in"],
                    s["docs_kept"],
                    s["docs_removed"] + s.get("docs_rejected", 0),
                    s["tokens_in"],
                    s["tokens_kept"],
                    ", ".join(f"{k}: {v}" for k, v in {**s["reasons"], **s.get("edits", {})}.items()),
                ]
                for s in report["stages"]
            ],
        ),
        "",
        "## Sources",
        "",
        markdown_table(
            ["source", "docs in", "rejected", "kept", "kept fraction", "tokens kept"],
            [
                [
                    n,
                    s["docs_in"],
                    s["docs_rejected"],
                    s["docs_kept"],
                    f"{s['kept_fraction']:.3f}",
                    s["tokens_kept"],
                ]
                for n, s in report["sources"].items()
            ],
        ),
        "",
        "## Domains",
        "",
        markdown_table(
            ["domain", "docs", "tokens"], [[d, v["docs"], v["tokens"]] for d, v in report["domains"].items()]
        ),
        "",
    ]
    parts += [f"![{os.path.basename(p)}]({p})" for p in report["plots"]]
    return "\n".join(parts) + "\n"


class WriteCorpusReport(PipelineStep):
    """The pipeline step that writes the report (the one step of the last step list, one task), so the
    report follows the other lists on every executor, including jobs submitted to a cluster."""

    name = "corpus report"
    type = "📝 - REPORT"

    def __init__(self, *, config: CurationConfig, step_lists: list[str]):
        super().__init__()
        self.config = config
        self.step_lists = step_lists

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        report = write_report(self.config, self.step_lists)
        self.stat_update("docs_kept", value=report["totals"]["docs_kept"])
        yield from data or ()
