"""Model cards for RexBERT checkpoints, built from the run's own records.

Inputs, all optional except the model directory:

- `config.json` and the safetensors headers of the model directory: architecture and size;
- `training_summary.json` (written by the pretraining CLI next to the model): the phases, with their
  token counts, sequence lengths, masking rates, learning-rate schedules and data mixtures;
- `results.json` (written by `rexbert eval`): one `model-index` entry per evaluated suite and metric;
- `finetune.json` (written by `rexbert finetune`): the task, the data, the model's metrics beside the
  baselines' (`hub_cards.finetune_card`), with `model-index` entries for the model's own.

The metadata goes through `huggingface_hub.ModelCardData` / `EvalResult` (so the YAML header and the
`model-index` have exactly the layout the Hub parses), and the text is rendered from the Jinja
template `templates/model_card.md` with `ModelCard.from_template`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hub_cards.common import as_mapping, count_parameters, human_count, read_json
from hub_cards.finetune_card import TASKS, finetune_eval_results, finetune_section, read_finetune

MODEL_CARD_TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
RESULTS_LOCATIONS = ("results.json", "eval/results.json", "../eval/results.json")
"""Where eval results are looked for, relative to the model directory (the last one is the `rexbert run`
layout: <run>/model next to <run>/eval)."""
HUB_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json")

# The pipeline tag the Hub shows for a checkpoint, from the suffix of its architecture class.
HEAD_PIPELINE_TAGS = {
    "ForMaskedLM": "fill-mask",
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "Model": "feature-extraction",
}


@dataclass
class CardOptions:
    """What the run records cannot say: the publishing choices for the card's metadata."""

    repo_id: str | None = None
    license: str = "apache-2.0"
    language: list[str] = field(default_factory=lambda: ["en"])
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    remote_code: bool = False  # the repo keeps `model_type: rexbert` and its code (see hub_cards.publish)


def publishable_name(path_or_id: str | None) -> str | None:
    """A Hub id as it is; a local path reduced to its folder name (no local path goes into a card)."""
    if not path_or_id:
        return None
    looks_like_hub_id = path_or_id.count("/") == 1 and not Path(path_or_id).exists()
    return path_or_id if looks_like_hub_id else Path(path_or_id).name


def find_results(model_dir: str | Path) -> Path | None:
    """The eval results of a model (first of `RESULTS_LOCATIONS` that exists), if any."""
    for relative in RESULTS_LOCATIONS:
        candidate = Path(model_dir) / relative
        if candidate.is_file():
            return candidate
    return None


def check_results(results: dict[str, Any]) -> None:
    """Raise a ValueError naming the first field of `results.json` that breaks the eval schema."""
    suites = results.get("suites")
    if not isinstance(suites, dict):
        raise ValueError('results.json has no "suites" object')
    for name, suite in suites.items():
        for key in ("task_type", "dataset", "metrics"):
            if key not in suite:
                raise ValueError(f'results.json suite "{name}" has no "{key}"')
        for key in ("name", "type"):
            if not suite["dataset"].get(key):
                raise ValueError(f'results.json suite "{name}" has no dataset "{key}"')


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric metrics as {name: value}; nested groups (per-task GLUE scores) become "task/metric".

    Non-numeric and non-finite entries are left out: the Hub's model-index only takes numbers.
    """
    flat: dict[str, float] = {}
    for name, value in metrics.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, prefix=f"{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            flat[key] = float(value)
    return flat


def eval_results_from(results: dict[str, Any]) -> list[EvalResult]:
    """One `EvalResult` per (suite, metric) of an eval `results.json`, in suite order."""
    check_results(results)
    eval_results = []
    for suite_name, suite in results["suites"].items():
        dataset = suite["dataset"]
        for metric, value in flatten_metrics(suite["metrics"]).items():
            eval_results.append(
                EvalResult(
                    task_type=suite["task_type"],
                    task_name=suite_name,
                    dataset_type=dataset["type"],
                    dataset_name=dataset["name"],
                    dataset_split=dataset.get("split"),
                    dataset_config=dataset.get("config"),
                    metric_type=metric,
                    metric_name=metric,
                    metric_value=value,
                )
            )
    return eval_results


def pipeline_tag_for(config: dict[str, Any]) -> str:
    """The Hub pipeline tag of the checkpoint's head (fill-mask for a pretrained encoder)."""
    for architecture in config.get("architectures") or []:
        for suffix, tag in HEAD_PIPELINE_TAGS.items():
            if architecture.endswith(suffix):
                return tag
    return "fill-mask"


def architecture_rows(config: dict[str, Any], n_parameters: int) -> list[tuple[str, str]]:
    """(property, value) rows describing the encoder's shape for the card's architecture table."""
    layer_types = config.get("layer_types") or []
    n_global = sum(kind == "full_attention" for kind in layer_types)
    rows = [
        ("parameters", f"{human_count(n_parameters)} ({n_parameters:,})"),
        ("layers", str(config.get("num_hidden_layers"))),
        ("hidden size", str(config.get("hidden_size"))),
        ("attention heads", str(config.get("num_attention_heads"))),
        ("GeGLU intermediate size", str(config.get("intermediate_size"))),
        ("vocabulary", f"{config.get('vocab_size'):,}" if config.get("vocab_size") else "?"),
        ("max sequence length", str(config.get("max_position_embeddings"))),
    ]
    if layer_types:
        rows.append(
            (
                "attention",
                f"{n_global} global + {len(layer_types) - n_global} local layers "
                f"(local window {config.get('local_attention')} tokens)",
            )
        )
    return rows


def _format_mask_rate(rate: float | list[float] | None) -> str:
    if rate is None:
        return "-"
    if isinstance(rate, (list, tuple)):
        return f"{rate[0]:.0%} → {rate[1]:.0%}"
    return f"{rate:.0%}"


def _format_mixture(mixture: dict[str, dict[str, float]] | None) -> str:
    if not mixture:
        return "-"
    start, end = mixture.get("start", {}), mixture.get("end", mixture.get("start", {}))
    parts = []
    for source in sorted(set(start) | set(end)):
        begin, finish = start.get(source, 0.0), end.get(source, 0.0)
        parts.append(f"{source} {begin:.2f}" if begin == finish else f"{source} {begin:.2f} → {finish:.2f}")
    return ", ".join(parts)


def phase_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    """The training phases as display strings, one dict per phase, for the card's training table."""
    rows = []
    for phase in summary.get("phases", []):
        guided = phase.get("guided_mlm")
        if isinstance(guided, (list, tuple)):
            guided = f"{guided[0]} → {guided[1]}"
        rows.append(
            {
                "phase": str(phase.get("phase", "")),
                "name": str(phase.get("name", "")),
                "tokens": human_count(phase.get("tokens", 0)),
                "steps": str(phase.get("steps", "")),
                "seq_len": str(phase.get("seq_len", "")),
                "mask_rate": _format_mask_rate(phase.get("mask_rate")),
                "schedule": f"{phase.get('lr_schedule', '?')}, peak {phase.get('peak_lr', 0):.1e}",
                "mixture": _format_mixture(phase.get("mixture")),
                "guided_mlm": "no" if not guided else ("yes" if guided is True else f"yes ({guided})"),
                "final_loss": f"{phase['final_loss']:.3f}"
                if isinstance(phase.get("final_loss"), (int, float))
                else "-",
            }
        )
    return rows


def result_rows(results: dict[str, Any] | None) -> list[dict[str, str]]:
    """Suite / dataset / metric / value rows for the card's results table (main metrics in bold)."""
    if not results:
        return []
    rows = []
    for suite_name, suite in results["suites"].items():
        for metric, value in flatten_metrics(suite["metrics"]).items():
            shown = f"{value:.4f}"
            rows.append(
                {
                    "suite": suite_name,
                    "dataset": f"{suite['dataset']['name']} ({suite['dataset'].get('split', '-')})",
                    "metric": metric,
                    "value": f"**{shown}**" if metric == suite.get("main_metric") else shown,
                }
            )
    return rows


def skipped_tasks(results: dict[str, Any] | None) -> dict[str, list[str]]:
    """Per suite, the tasks it listed as skipped ("task (reason)" when the reason is given), for the
    limitations section."""
    skipped = {}
    for name, suite in (results or {}).get("suites", {}).items():
        listed = suite.get("skipped")
        if isinstance(listed, dict):
            skipped[name] = [f"{task} ({reason})" for task, reason in sorted(listed.items())]
        elif listed:
            skipped[name] = sorted(map(str, listed))
    return skipped


def base_model_from(summary: dict[str, Any] | None) -> str | None:
    """The Hub id the first phase started from (`init_from`), when it is one (not "scratch", not a path)."""
    phases = (summary or {}).get("phases") or [{}]
    start = str(phases[0].get("init_from") or "")
    return start if HUB_REPO_ID.match(start) and not Path(start).exists() else None


def _published_class(config: dict[str, Any], remote_code: bool) -> str:
    """The architecture the published `config.json` names (ModernBERT's unless the remote code is kept)."""
    name = (config.get("architectures") or ["RexBertModel"])[0]
    return name if remote_code else name.replace("RexBert", "ModernBert", 1)


def build_model_card(
    model_dir: str | Path,
    options: CardOptions | None = None,
    *,
    results: dict | str | Path | None = None,
    training_summary: dict | str | Path | None = None,
) -> ModelCard:
    """Render the model card of a saved RexBERT directory.

    `results` and `training_summary` default to the files found in the directory (`results.json` or
    `eval/results.json`, and `training_summary.json`); pass dicts or paths to use others.
    """
    model_dir = Path(model_dir)
    options = options or CardOptions()
    config = read_json(model_dir / "config.json", "model config")
    results = as_mapping(results if results is not None else find_results(model_dir), "eval results")
    summary_path = model_dir / "training_summary.json"
    default_summary = summary_path if summary_path.is_file() else None
    summary = as_mapping(
        training_summary if training_summary is not None else default_summary, "training summary"
    )

    finetune = read_finetune(model_dir)
    model_name = options.repo_id or model_dir.resolve().name
    has_sentence_transformers = all((model_dir / name).is_file() for name in SENTENCE_TRANSFORMERS_FILES)
    tags = ["rexbert", "modernbert", "e-commerce"] + (["custom_code"] if options.remote_code else [])
    if has_sentence_transformers:
        tags.append("sentence-transformers")
    card_data = ModelCardData(
        model_name=model_name,
        license=options.license,
        language=list(options.language),
        library_name="transformers",
        pipeline_tag=TASKS[finetune["task"]]["pipeline_tag"] if finetune else pipeline_tag_for(config),
        tags=tags
        + [tag for tag in options.tags if tag not in tags]
        + ([finetune["task"]] if finetune else []),
        base_model=options.base_model or base_model_from(summary),
        datasets=list(options.datasets) or None,
        eval_results=(eval_results_from(results) if results else [])
        + (finetune_eval_results(finetune) if finetune else [])
        or None,
    )
    n_parameters = count_parameters(model_dir)
    return ModelCard.from_template(
        card_data,
        template_path=str(MODEL_CARD_TEMPLATE),
        model_id=model_name,
        repo_id=options.repo_id or model_name,  # never a local path: the card is published
        preset=(summary or {}).get("preset"),
        n_parameters=human_count(n_parameters),
        architecture=architecture_rows(config, n_parameters),
        model_class=_published_class(config, options.remote_code),
        phases=phase_rows(summary or {}),
        total_tokens=human_count(sum(p.get("tokens", 0) for p in (summary or {}).get("phases", []))),
        results=result_rows(results),
        results_model=publishable_name((results or {}).get("model")),
        results_created=(results or {}).get("created"),
        skipped=skipped_tasks(results),
        has_sentence_transformers=has_sentence_transformers,
        has_saliency_lexicon=(model_dir / "saliency_lexicon.json").is_file(),
        remote_code=options.remote_code,
        remote_kwarg=", trust_remote_code=True" if options.remote_code else "",
        finetune=finetune_section(finetune) if finetune else None,
    )


def write_model_card(model_dir: str | Path, options: CardOptions | None = None, **inputs: Any) -> Path:
    """Build the card (see `build_model_card`) and save it as `<model_dir>/README.md`."""
    card = build_model_card(model_dir, options, **inputs)
    path = Path(model_dir) / "README.md"
    card.save(path)
    return path


__all__ = [
    "CardOptions",
    "build_model_card",
    "write_model_card",
    "eval_results_from",
    "find_results",
]
