"""Dataset cards for curated corpora, built from the curation report (`report/report.json`).

The card lists the sources with their kept/dropped counts, every filter stage with its removal count and
reasons, the domain distribution as a table and a bar chart (written next to the report as a PNG and
referenced from the card), and license notes per source. Metadata (`DatasetCardData`) carries the size
category computed from the kept documents and a `configs` entry pointing the Hub's viewer and
`datasets.load_dataset(repo_id)` at the corpus shards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from hub_cards.common import as_mapping, human_count
from rexbert_core.safe_outputs import atomic_save_figure

__all__ = [
    "DATASET_CARD_TEMPLATE",
    "DATA_FILE_PATTERNS",
    "DOMAIN_PLOT_PATH",
    "REPORT_PATH",
    "SIZE_CATEGORIES",
    "DatasetCardOptions",
    "build_dataset_card",
    "check_report",
    "data_files_config",
    "domain_rows",
    "license_rows",
    "plot_domains",
    "report_plots",
    "size_category",
    "stage_rows",
    "write_dataset_card",
]

DATASET_CARD_TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"
REPORT_PATH = Path("report") / "report.json"
DOMAIN_PLOT_PATH = Path("report") / "domain_distribution.png"
DATA_FILE_PATTERNS = ("corpus/*.parquet", "corpus/*.jsonl.gz", "corpus/*.jsonl")
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


@dataclass
class DatasetCardOptions:
    """Publishing choices the report cannot say."""

    repo_id: str | None = None
    pretty_name: str | None = None
    license: str = "other"
    language: list[str] = field(default_factory=lambda: ["en"])
    source_licenses: dict[str, str] = field(default_factory=dict)


def size_category(n_documents: int) -> str:
    """The Hub's size bucket for a number of rows."""
    for limit, label in SIZE_CATEGORIES:
        if n_documents < limit:
            return label
    return "n>1B"


def data_files_config(dataset_dir: Path) -> list[dict[str, Any]] | None:
    """A `configs` metadata entry for the corpus shards present, or None when there are none."""
    for pattern in DATA_FILE_PATTERNS:
        if any(dataset_dir.glob(pattern)):
            return [{"config_name": "default", "data_files": [{"split": "train", "path": pattern}]}]
    return None


def check_report(report: dict[str, Any]) -> None:
    """Raise a ValueError naming the first missing part of the curation report schema."""
    for key in ("stages", "domains", "sources", "totals"):
        if key not in report:
            raise ValueError(f'curation report has no "{key}"')
    for stage in report["stages"]:
        for key in ("name", "docs_in", "docs_kept", "docs_removed"):
            if key not in stage:
                raise ValueError(f'curation report stage {stage.get("name", "?")} has no "{key}"')


def plot_domains(domains: dict[str, dict[str, int]], path: Path) -> Path:
    """Bar chart of documents and tokens per domain (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(domains, key=lambda name: -domains[name].get("tokens", 0))
    figure, axes = plt.subplots(1, 2, figsize=(9, 0.5 * len(names) + 1.5))
    for axis, key in zip(axes, ("docs", "tokens")):
        axis.barh(names, [domains[name].get(key, 0) for name in names], color="#4c72b0")
        axis.set_title(f"{key} per domain")
        axis.invert_yaxis()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_figure(figure, path, dpi=100)
    plt.close(figure)
    return path


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def domain_rows(domains: dict[str, dict[str, int]]) -> list[dict[str, str]]:
    total_docs = sum(d.get("docs", 0) for d in domains.values())
    total_tokens = sum(d.get("tokens", 0) for d in domains.values())
    return [
        {
            "domain": name,
            "docs": f"{d.get('docs', 0):,}",
            "docs_share": _share(d.get("docs", 0), total_docs),
            "tokens": human_count(d.get("tokens", 0)),
            "tokens_share": _share(d.get("tokens", 0), total_tokens),
        }
        for name, d in sorted(domains.items(), key=lambda item: -item[1].get("tokens", 0))
    ]


def stage_rows(stages: list[dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for stage in stages:
        reasons = stage.get("reasons") or {}
        rows.append(
            {
                "name": stage["name"],
                "docs_in": f"{stage['docs_in']:,}",
                "docs_kept": f"{stage['docs_kept']:,}",
                "docs_removed": f"{stage['docs_removed']:,}",
                "share": _share(stage["docs_removed"], stage["docs_in"]),
                "reasons": ", ".join(
                    f"{reason}: {count:,}" for reason, count in sorted(reasons.items(), key=lambda r: -r[1])
                )
                or "-",
            }
        )
    return rows


def report_plots(dataset_dir: Path, report: dict[str, Any]) -> list[str]:
    """The report's own PNGs that exist, as repo paths (listed relative to `report/`, as the curation
    report writes them, or to the directory)."""
    found = []
    for listed in report.get("plots", []):
        for candidate in (REPORT_PATH.parent / listed, Path(listed)):
            if (dataset_dir / candidate).is_file():
                found.append(candidate.as_posix())
                break
    return found


def license_rows(sources: dict[str, Any], options: DatasetCardOptions, report: dict[str, Any]) -> list[dict]:
    """Per source: the license given in the options (`--source-license`) or in the report's optional
    "licenses" mapping; otherwise a note that it was not recorded (source names alone say nothing)."""
    known = {**(report.get("licenses") or {}), **options.source_licenses}
    return [
        {
            "source": source,
            "license": known.get(source, "not recorded: check the source's terms before redistributing"),
        }
        for source in sorted(sources)
    ]


def build_dataset_card(
    dataset_dir: str | Path,
    options: DatasetCardOptions | None = None,
    *,
    report: dict | str | Path | None = None,
    write_plot: bool = True,
) -> DatasetCard:
    """Render the dataset card of a curated corpus directory (`report/report.json` unless `report` is given).

    The domain chart is the report's own `domain_distribution.png` when it has one; otherwise, with
    `write_plot`, it is drawn here and saved as `report/domain_distribution.png`, so it is uploaded too.
    """
    dataset_dir = Path(dataset_dir)
    options = options or DatasetCardOptions()
    report = as_mapping(report if report is not None else dataset_dir / REPORT_PATH, "curation report")
    check_report(report)
    totals = report["totals"]
    name = options.pretty_name or options.repo_id or dataset_dir.resolve().name
    plots = report_plots(dataset_dir, report)
    domain_plot = next((plot for plot in plots if Path(plot).name == DOMAIN_PLOT_PATH.name), None)
    if domain_plot is None and write_plot and report["domains"]:
        domain_plot = plot_domains(report["domains"], dataset_dir / DOMAIN_PLOT_PATH).relative_to(dataset_dir)
    card_data = DatasetCardData(
        pretty_name=name,
        language=list(options.language),
        license=options.license,
        task_categories=["fill-mask", "text-classification"],
        size_categories=[size_category(totals.get("docs_kept", 0))],
        tags=["e-commerce", "rexbert", "curated"],
        configs=data_files_config(dataset_dir),
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(DATASET_CARD_TEMPLATE),
        dataset_name=name,
        repo_id=options.repo_id or str(dataset_dir),
        totals={key: f"{value:,}" for key, value in totals.items()},
        sources={source: counts for source, counts in sorted(report["sources"].items())},
        stages=stage_rows(report["stages"]),
        domains=domain_rows(report["domains"]),
        domain_plot=Path(domain_plot).as_posix() if domain_plot else None,
        other_plots=[plot for plot in plots if plot != domain_plot],
        licenses=license_rows(report["sources"], options, report),
    )


def write_dataset_card(
    dataset_dir: str | Path, options: DatasetCardOptions | None = None, **inputs: Any
) -> Path:
    """Build the card (see `build_dataset_card`) and save it as `<dataset_dir>/README.md`."""
    card = build_dataset_card(dataset_dir, options, **inputs)
    path = Path(dataset_dir) / "README.md"
    card.save(path)
    return path
