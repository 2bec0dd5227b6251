"""`rexbert push`: write the card and upload a model or a curated dataset to the Hub.

    rexbert push model   DIR REPO_ID [--results FILE] [--training-summary FILE] [--base-model ID]
                         [--remote-code] ...
    rexbert push dataset DIR REPO_ID [--report FILE] [--source-license SOURCE=LICENSE] ...

A RexBERT model goes up ModernBERT-typed (plain transformers loads it; see `hub_cards.publish`) unless
--remote-code keeps `model_type: rexbert` and its modelling code. Common options: --private / --public, --revision BRANCH, --dry-run (print the files and sizes that would be
uploaded; no network), --write-card (also save the card as DIR/README.md), --token, --endpoint (defaults
to HF_ENDPOINT or huggingface.co), --commit-message. Hub errors are reported as one readable line
(exit status 1) instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client: its connection errors are not OSErrors
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from hub_cards.dataset_card import DatasetCardOptions, build_dataset_card
from hub_cards.model_card import CardOptions, build_model_card
from hub_cards.publish import UploadPlan, check_repo_id, plan_dataset_upload, plan_model_upload, push
from rexbert_core.safe_outputs import verify_model_dir
from rexbert_core.typed_config import DataError, RunError

__all__ = ["add_arguments", "build_plan", "explain_hub_error", "main"]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="the saved model / curated corpus directory")
    parser.add_argument("repo_id", help="target repo, e.g. my-org/rexbert-17m")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument(
        "--private",
        dest="private",
        action="store_const",
        const=True,
        default=None,
        help="make the repo private (an existing repo is switched)",
    )
    visibility.add_argument(
        "--public",
        dest="private",
        action="store_const",
        const=False,
        help="make the repo public (an existing repo is switched)",
    )
    parser.add_argument("--revision", default=None, help="branch to commit to (created from main if missing)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be uploaded; no network")
    parser.add_argument("--write-card", action="store_true", help="also save the card as DIRECTORY/README.md")
    parser.add_argument(
        "--no-card", action="store_true", help="upload the directory's own README.md as it is"
    )
    parser.add_argument("--license", default=None, help="license id for the card metadata")
    parser.add_argument("--language", nargs="+", default=["en"], help="language codes for the card metadata")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    parser.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    parser.add_argument("--commit-message", default=None)
    parser.add_argument(
        "--large",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="upload through huggingface_hub's resumable multi-commit folder upload "
        "(default: when the upload is over 5 GiB)",
    )


def _source_license(value: str) -> tuple[str, str]:
    source, separator, license_note = value.partition("=")
    if not (separator and source and license_note):
        raise argparse.ArgumentTypeError(f"expected SOURCE=LICENSE, got {value!r}")
    return source, license_note


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="push_kind", metavar="{model,dataset}", required=True)
    model = verbs.add_parser("model", help="push a saved RexBERT model with its model card")
    _add_common(model)
    model.add_argument(
        "--results",
        type=Path,
        default=None,
        help="eval results.json (default: DIR/results.json or DIR/eval/results.json)",
    )
    model.add_argument(
        "--training-summary",
        type=Path,
        default=None,
        help="training_summary.json (default: DIR/training_summary.json)",
    )
    model.add_argument("--base-model", default=None, help="repo id of the checkpoint this one started from")
    model.add_argument("--dataset", nargs="+", default=[], help="repo ids of the training datasets")
    model.add_argument("--tag", nargs="+", default=[], help="extra tags")
    model.add_argument(
        "--remote-code",
        action="store_true",
        help="keep model_type rexbert and upload its modelling code (users then need trust_remote_code=True); "
        "by default the checkpoint is published ModernBERT-typed and loads with plain transformers",
    )
    dataset = verbs.add_parser("dataset", help="push a curated corpus with its dataset card")
    _add_common(dataset)
    dataset.add_argument(
        "--report", type=Path, default=None, help="curation report.json (default: DIR/report/report.json)"
    )
    dataset.add_argument("--pretty-name", default=None)
    dataset.add_argument(
        "--source-license",
        nargs="+",
        default=[],
        metavar="SOURCE=LICENSE",
        type=_source_license,
        help="license note per source, e.g. review=cc-by-4.0",
    )


def _card_text(args: argparse.Namespace) -> str | None:
    """Render the card for the chosen kind (None with --no-card); save it too with --write-card."""
    if args.no_card:
        return None
    if args.push_kind == "model":
        options = CardOptions(
            repo_id=args.repo_id,
            license=args.license or "apache-2.0",
            language=args.language,
            base_model=args.base_model,
            datasets=args.dataset,
            tags=args.tag,
            remote_code=args.remote_code,
        )
        card = build_model_card(
            args.directory, options, results=args.results, training_summary=args.training_summary
        )
    else:
        licenses = dict(args.source_license)
        options = DatasetCardOptions(
            repo_id=args.repo_id,
            pretty_name=args.pretty_name,
            license=args.license or "other",
            language=args.language,
            source_licenses=licenses,
        )
        card = build_dataset_card(args.directory, options, report=args.report)
    if args.write_card:
        card.save(Path(args.directory) / "README.md")
    return str(card)


def build_plan(args: argparse.Namespace) -> UploadPlan:
    check_repo_id(args.repo_id)  # before the card is built: a dry run refuses what the push would
    if args.push_kind == "model":
        verify_model_dir(args.directory)  # damaged weights are refused by name before the card reads them
    card_text = _card_text(args)
    if args.push_kind == "model":
        return plan_model_upload(args.directory, args.repo_id, card_text, remote_code=args.remote_code)
    return plan_dataset_upload(args.directory, args.repo_id, card_text)


def explain_hub_error(error: HfHubHTTPError, args: argparse.Namespace) -> str:
    """One readable sentence for a failed Hub request, with the server's own message when it sent one."""
    status = error.response.status_code if error.response is not None else None
    where = args.endpoint or "the Hub"
    server_said = f" (server: {error.server_message.strip()})" if error.server_message else ""
    if status == 401:
        return (
            f"authentication failed (HTTP 401) at {where}: pass a write token with --token, set HF_TOKEN "
            f"or run `hf auth login`{server_said}"
        )
    if status == 403:
        return f"permission denied (HTTP 403): the token cannot write to {args.repo_id}{server_said}"
    if isinstance(error, RevisionNotFoundError):
        return f"revision {args.revision or 'main'} not found in {args.repo_id} (HTTP 404){server_said}"
    if isinstance(error, RepositoryNotFoundError) or status == 404:
        return (
            f"repository {args.repo_id} not found at {where} (HTTP 404): check the repo id and that the "
            f"token can see it{server_said}"
        )
    if status is not None and status >= 500:
        return (
            f"{where} had a server error (HTTP {status}); try again later (a re-push uploads only "
            f"what is missing){server_said}"
        )
    return f"the Hub refused the push (HTTP {status}){server_said}"


def main(args: argparse.Namespace) -> int:
    try:
        plan = build_plan(args)
    except (FileNotFoundError, ValueError) as error:  # the directory cannot be published as it is
        raise DataError(f"rexbert push: {error}") from error
    if args.dry_run:
        print("dry run, nothing uploaded:")
        print(plan.describe())
        return 0
    for path, reason in plan.skipped:
        print(f"skipping {path}: {reason}", file=sys.stderr)
    try:
        result = push(
            plan,
            endpoint=args.endpoint,
            token=args.token,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            large=args.large,
        )
    except HfHubHTTPError as error:
        raise RunError(f"rexbert push: {explain_hub_error(error, args)}") from error
    except ValueError as error:  # raised by huggingface_hub when the Hub rejects the card's YAML
        raise RunError(f"rexbert push: {error}") from error
    except (OSError, httpx2.TransportError) as error:  # connection refused, DNS, timeouts
        raise RunError(f"rexbert push: cannot reach {args.endpoint or 'the Hub'}: {error}") from error
    for path in result.deleted:
        print(f"deleted {path}: no longer in {args.directory}")
    if result.changed:
        print(f"pushed {len(plan.files)} files to {plan.repo_type} {plan.repo_id}: {result.commit_url}")
    else:
        print(f"{plan.repo_type} {plan.repo_id} already has these files; no new commit ({result.commit_url})")
    return 0
