"""The corpus report: per-stage accounting, domain and source distributions, length histograms.

Built after every run from datatrove's per-task stats files (``<out>/logs/<step>/stats/<rank>.json``,
which survive resumed runs) and from the corpus shards themselves. Writes ``<out>/report/report.json``,
``report.md`` and PNG plots under ``report/plots`` (paths in ``plots`` are relative to ``report/``).
Accounting identity: ``totals.docs_in == docs_kept + docs_removed + docs_rejected``.
"""

from __future__ import annotations

import glob
import json
import os
from collections import defaultdict

from curation.config import CurationConfig
from curation.pipeline import Paths
from curation.readers import iter_records

FILTER_STAGES = ("domain_preselect", "quality", "classifier", "language")
DEDUP_STEPS = {
    "exact_dedup": ("exact-deduplication stage 3", "filtered", "exact_duplicate"),
    "minhash_dedup": ("MinHash stage 4", None, "near_duplicate"),
}


def _total(value) -> float:
    return value["total"] if isinstance(value, dict) else value


def load_step_stats(logs_dir: str) -> dict[str, dict[str, float]]:
    """Stats summed over all tasks of all executors, keyed by step name (without the type prefix)."""
    steps: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for path in sorted(glob.glob(os.path.join(logs_dir, "*", "stats", "*.json"))):
        with open(path, encoding="utf-8") as handle:
            for step in json.load(handle):
                name = step["name"].split(": ", 1)[-1]
                for key, value in step["stats"].items():
                    steps[name][key] += _total(value)
    return steps


def _int(stats: dict, key: str) -> int:
    return int(stats.get(key, 0))


def stage_rows(steps: dict[str, dict[str, float]]) -> list[dict]:
    """One row per stage that ran, in pipeline order."""
    readers = {name: s for name, s in steps.items() if name.startswith("curation:read:")}
    rejected = defaultdict(int)
    for s in readers.values():
        for key, value in s.items():
            if key.startswith("rejected_"):
                rejected[key.removeprefix("rejected_")] += int(value)
    read = sum(_int(s, "docs_read") for s in readers.values())
    tokens_read = sum(_int(s, "tokens_read") for s in readers.values())
    rows = [
        {
            "name": "read",
            "docs_in": read + sum(rejected.values()),
            "docs_kept": read,
            "docs_removed": 0,
            "docs_rejected": sum(rejected.values()),
            "tokens_in": tokens_read,
            "tokens_kept": tokens_read,
            "reasons": dict(rejected),
        }
    ]
    quality_steps = sorted(n for n in steps if n.startswith("curation:quality:"))
    names = [
        n
        for stage in FILTER_STAGES
        for n in ([f"curation:{stage}"] + (quality_steps if stage == "quality" else []))
    ]
    for name in names + ["curation:pii"]:
        if name not in steps:
            continue
        s = steps[name]
        row = {
            "name": name.removeprefix("curation:"),
            "docs_in": _int(s, "total"),
            "docs_kept": _int(s, "forwarded"),
            "docs_removed": _int(s, "dropped"),
            "tokens_in": _int(s, "tokens_in"),
            "tokens_kept": _int(s, "tokens_kept"),
            "reasons": {k.removeprefix("dropped_"): int(v) for k, v in s.items() if k.startswith("dropped_")},
        }
        edits = {
            k: int(v)
            for k, v in s.items()
            if k.endswith("_replaced") or k in ("lines_removed", "docs_edited")
        }
        if edits:
            row["edits"] = edits
        rows.append(row)
    tokens_before = _int(steps.get("curation:tally:filtered", {}), "tokens")
    for stage, (step_suffix, _, reason) in DEDUP_STEPS.items():
        step = next((s for n, s in steps.items() if n.endswith(step_suffix)), None)
        if step is None:
            continue
        tokens_after = _int(steps.get(f"curation:tally:{stage}", {}), "tokens")
        rows.append(
            {
                "name": stage,
                "docs_in": _int(step, "total"),
                "docs_kept": _int(step, "forwarded"),
                "docs_removed": _int(step, "dropped"),
                "tokens_in": tokens_before,
                "tokens_kept": tokens_after,
                "reasons": {reason: _int(step, "dropped")} if _int(step, "dropped") else {},
            }
        )
        tokens_before = tokens_after
    return rows


def corpus_rows(corpus_dir: str) -> list[dict]:
    """source, domain, token_count and character length of every corpus document."""
    rows = []
    for path in sorted(glob.glob(os.path.join(corpus_dir, "*.parquet"))):
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["source", "domain", "token_count", "text"])
        lengths = pc.utf8_length(table["text"]).to_pylist()
        for row, chars in zip(table.drop(["text"]).to_pylist(), lengths):
            rows.append({**row, "chars": chars})
    for path in sorted(glob.glob(os.path.join(corpus_dir, "*.jsonl.gz"))):
        for record in iter_records(path):
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


def build_report(config: CurationConfig) -> dict:
    paths = Paths(config.output_dir)
    steps = load_step_stats(paths.logs)
    stages = stage_rows(steps)
    docs = corpus_rows(paths.corpus)
    domains: dict[str, dict] = defaultdict(lambda: {"docs": 0, "tokens": 0})
    kept_by_source: dict[str, dict] = defaultdict(lambda: {"docs": 0, "tokens": 0})
    for row in docs:
        domains[row["domain"]]["docs"] += 1
        domains[row["domain"]]["tokens"] += row["token_count"] or 0
        kept_by_source[row["source"]]["docs"] += 1
        kept_by_source[row["source"]]["tokens"] += row["token_count"] or 0
    sources = {}
    for source in config.sources:
        s = steps.get(f"curation:read:{source.name}", {})
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
    }
    totals["accounting_ok"] = (
        totals["docs_in"] == totals["docs_kept"] + totals["docs_removed"] + totals["docs_rejected"]
    )
    return {
        "output_dir": config.output_dir,
        "token_counter": config.token_counter,
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


def write_report(config: CurationConfig) -> dict:
    """Build the report and write report.json, report.md and the plots; returns the report."""
    report = build_report(config)
    report_dir = Paths(config.output_dir).report
    os.makedirs(os.path.join(report_dir, "plots"), exist_ok=True)
    report["plots"] = write_plots(report, report_dir)
    with open(os.path.join(report_dir, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    with open(os.path.join(report_dir, "report.md"), "w", encoding="utf-8") as handle:
        handle.write(report_markdown(report))
    return report


def write_plots(report: dict, report_dir: str) -> list[str]:
    """Domain docs, tokens per domain, length histogram and per-stage kept/removed bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(report_dir, "plots", name), dpi=110)
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


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    t = report["totals"]
    parts = [
        "# Curation report",
        "",
        (
            f"Input records {t['docs_in']:,} = kept {t['docs_kept']:,} + removed {t['docs_removed']:,} "
            f"+ rejected {t['docs_rejected']:,}; tokens ({report['token_counter']}) kept "
            f"{t['tokens_kept']:,} of {t['tokens_in']:,}."
        ),
        "",
        "## Stages",
        "",
        _table(
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
        _table(
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
        _table(
            ["domain", "docs", "tokens"], [[d, v["docs"], v["tokens"]] for d, v in report["domains"].items()]
        ),
        "",
    ]
    parts += [f"![{os.path.basename(p)}]({p})" for p in report["plots"]]
    return "\n".join(parts) + "\n"
