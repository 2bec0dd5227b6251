"""Upload plans and pushes of model and dataset directories to the Hub.

A push happens in two steps so that `--dry-run` shows exactly what a real push would send:

1. `plan_model_upload` / `plan_dataset_upload` walk the directory and decide, file by file, what goes
   up: safetensors weights, configs, tokenizer, the generated card (README.md), data shards. Pickle-based
   files (`.bin`, `.pt`, `.pkl`, ...) never go up: they are listed as skipped with the reason, and a model
   whose only weights are pickles is refused. A RexBERT checkpoint is published ModernBERT-typed by
   default, as the released RexBERT models are: `config.json` says `model_type: modernbert` with
   `ModernBert*` architectures and no `auto_map`, and no Python files go up, so plain transformers,
   sentence-transformers and serving stacks load it without `trust_remote_code` (the weights need no change:
   the state-dict names are ModernBERT's). Users of this package load the same repo with the `RexBert*`
   classes and get the unpadded fast path. With `remote_code=True` (`--remote-code`) the `rexbert` type is
   kept instead, and the plan makes sure `trust_remote_code=True` works: `config.json` must carry an
   `auto_map`, and every module it names (with its relative imports) must be uploaded; files missing from
   the directory are taken from the installed `modeling_rexbert` package.
2. `push` sends the plan with `HfApi`: `create_repo(exist_ok=True)`, optionally the visibility and a
   branch, then one `create_commit`. Files identical to the remote ones are dropped by `huggingface_hub`
   itself (it compares git blob ids), so pushing an unchanged directory creates no commit. A plan names the
   folders it `replaces` (a corpus's `corpus/` and `report/`): remote files there that the plan does not
   hold are deleted in the same commit, so a re-push with fewer shards leaves exactly the local shards (a
   stale shard would otherwise still match the card's `corpus/*.parquet` pattern). A large plan (over
   `LARGE_PUSH_BYTES`, or `large=True`) sends its files from disk with `HfApi.upload_folder`, which in
   huggingface_hub 2.x is the former `upload_large_folder`: with hf_xet it uploads in a streamed pipeline,
   commits in batches below the server's limits, and an interrupted push resumes by running it again
   (committed files are skipped, uploaded chunks deduplicated). The generated card and the deletions
   follow in one last commit.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers.dynamic_module_utils import get_relative_imports

from hub_cards.common import human_bytes
from rexbert_core.safe_outputs import CHECKSUMS_FILENAME, verify_model_dir

__all__ = [
    "DATASET_FOLDERS",
    "LARGE_PUSH_BYTES",
    "PICKLE_SUFFIXES",
    "REMOTE_CODE_MODEL_TYPES",
    "SKIPPED_DIRECTORIES",
    "PlannedFile",
    "PushResult",
    "UploadPlan",
    "add_client_files",
    "add_remote_code",
    "check_repo_id",
    "default_auto_map",
    "nonfinite_weights",
    "plan_dataset_upload",
    "plan_model_upload",
    "publish_as_modernbert",
    "push",
]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
SKIPPED_DIRECTORIES = ("checkpoint-*", "__pycache__", ".*", "runs", "wandb")
REMOTE_CODE_MODEL_TYPES = ("rexbert",)
# Above this a push goes through `upload_folder`'s resumable multi-commit pipeline: one commit of tens of GB
# built in one request is what the Hub refuses or times out on.
LARGE_PUSH_BYTES = 5 * 2**30


@dataclass
class PlannedFile:
    """One file of the upload: read from `source` (a path), or generated in memory (`content`)."""

    path_in_repo: str
    source: Path | None = None
    content: bytes | None = None
    note: str = ""

    @property
    def size(self) -> int:
        return len(self.content) if self.content is not None else self.source.stat().st_size

    def operation(self) -> CommitOperationAdd:
        data = self.content if self.content is not None else str(self.source)
        return CommitOperationAdd(path_in_repo=self.path_in_repo, path_or_fileobj=data)


def check_repo_id(repo_id: str) -> str:
    """`repo_id` if the Hub accepts it as a repository id (huggingface_hub's own rule), checked before any
    file is planned or sent, so a dry run says what the real push would."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"repo id {repo_id!r}: {' '.join(str(error).split())}") from None
    return repo_id


def nonfinite_weights(model_dir: Path, limit: int = 3) -> list[str]:
    """Names of (up to `limit`) tensors of the model's safetensors files holding a nan or inf: a diverged
    model loads and runs, and predicts nothing. Reads every weight once (1.6 GB for a 400M model)."""
    import torch
    from safetensors import safe_open

    found = []
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(path, framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                tensor = weights.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    found.append(f"{path.name}:{name}")
                    if len(found) == limit:
                        return found
    return found


@dataclass
class UploadPlan:
    """Everything one push would send to `repo_id`, and what it leaves out and why."""

    repo_id: str
    repo_type: str
    files: list[PlannedFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Remote folders this push makes equal to the plan: their remote files that the plan lacks are deleted.
    replaces: tuple[str, ...] = ()
    root: Path | None = None  # the local directory the files come from

    @property
    def size(self) -> int:
        return sum(planned.size for planned in self.files)

    def __post_init__(self):
        check_repo_id(self.repo_id)

    def stale(self, remote_paths: list[str]) -> list[str]:
        """Remote files under the replaced folders that this plan does not hold."""
        planned = set(self.paths)
        return sorted(
            path for path in remote_paths if path.split("/")[0] in self.replaces and path not in planned
        )

    def add(self, planned: PlannedFile) -> None:
        """Add a file, replacing an earlier plan entry for the same path (generated files win)."""
        self.files = [f for f in self.files if f.path_in_repo != planned.path_in_repo] + [planned]
        self.files.sort(key=lambda f: f.path_in_repo)

    @property
    def paths(self) -> list[str]:
        return [f.path_in_repo for f in self.files]

    def describe(self) -> str:
        """The dry-run listing: every file with its size and origin, then the skipped files."""
        width = max((len(f.path_in_repo) for f in self.files), default=10)
        lines = [f"{self.repo_type} repo {self.repo_id}: {len(self.files)} files, {human_bytes(self.size)}"]
        for planned in self.files:
            note = f"  ({planned.note})" if planned.note else ""
            lines.append(f"  {planned.path_in_repo:<{width}}  {human_bytes(planned.size):>10}{note}")
        for path, reason in self.skipped:
            lines.append(f"  skipped {path}: {reason}")
        if self.replaces:
            folders = ", ".join(f"{folder}/" for folder in self.replaces)
            lines.append(f"  remote files under {folders} that are not listed here are deleted")
        return "\n".join(lines)


def _is_skipped_directory(relative: Path) -> bool:
    return any(
        fnmatch.fnmatch(part, pattern) for part in relative.parts[:-1] for pattern in SKIPPED_DIRECTORIES
    )


def _collect_files(root: Path, plan: UploadPlan, folders: tuple[str, ...] | None = None) -> None:
    """Add the directory's files to the plan, leaving out pickles, hidden files and trainer checkpoints.

    With `folders`, only top-level files and files under those sub-folders go up; the other sub-folders are
    listed as skipped (a curation output's `work/`, `logs/`, `rejects/` and `removed/` stay local).
    """
    inside = root.resolve()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if _is_skipped_directory(relative) or relative.name.startswith("."):
            continue
        if not path.resolve().is_relative_to(inside):  # never follow a link out of the directory
            plan.skipped.append(
                (relative.as_posix(), f"a link to {path.resolve()}, outside the directory: refused")
            )
            continue
        if relative.name == CHECKSUMS_FILENAME:
            continue  # a local integrity record, checked before the push
        if folders is not None and len(relative.parts) > 1 and relative.parts[0] not in folders:
            skipped_folder = relative.parts[0] + "/"
            if all(listed != skipped_folder for listed, _ in plan.skipped):
                plan.skipped.append(
                    (skipped_folder, f"intermediate output; only {', '.join(folders)} are published")
                )
            continue
        if relative.name.endswith(PICKLE_SUFFIXES):
            plan.skipped.append(
                (relative.as_posix(), "pickle-capable format, only safetensors/JSON/text are uploaded")
            )
            continue
        plan.add(PlannedFile(relative.as_posix(), source=path))


# "module.Class", optionally "org/repo--module.Class": module names are plain identifiers, so a reference
# can never name a file outside the model directory ("../../x.Class" is refused).
AUTO_MAP_REFERENCE = re.compile(r"^(?:[\w.-]+/[\w.-]+--)?[A-Za-z_]\w*\.[A-Za-z_]\w*$")


def _module_file(reference: str) -> str:
    """auto_map value -> module file: "modeling_rexbert.RexBertModel" -> "modeling_rexbert.py"
    (a "repo--module.Class" reference points at another repo's code and needs nothing here)."""
    if not AUTO_MAP_REFERENCE.match(reference):
        raise ValueError(f"config.json auto_map: {reference!r} is not a module.Class reference")
    return reference.split("--")[-1].rsplit(".", 1)[0] + ".py"


def _package_directory() -> Path:
    import modeling_rexbert

    return Path(modeling_rexbert.__file__).parent


def default_auto_map() -> dict[str, str]:
    """The full `auto_map` of a RexBERT checkpoint (config, encoder and every head), as the model classes'
    `save_pretrained` writes it."""
    from modeling_rexbert.modeling_rexbert import auto_map

    return auto_map()


def add_remote_code(model_dir: Path, config: dict, plan: UploadPlan) -> None:
    """Make the plan carry what `trust_remote_code=True` needs: an `auto_map` and its module files.

    Module files already in the directory are uploaded as they are (they match the weights); missing ones,
    and their relative imports, are taken from the installed `modeling_rexbert` package.
    """
    if not config.get("auto_map"):
        config = {**config, "auto_map": default_auto_map()}
        plan.add(
            PlannedFile(
                "config.json", content=_json_bytes(config), note="auto_map added for trust_remote_code"
            )
        )
    references = []
    for value in config["auto_map"].values():  # AutoTokenizer maps to a [slow, fast] pair, others to one name
        references.extend(value if isinstance(value, list) else [value])
    pending = sorted({_module_file(ref) for ref in references if ref and "--" not in ref})
    done: set[str] = set()
    while pending:
        name = pending.pop()
        if name in done:
            continue
        done.add(name)
        local = model_dir / name
        if local.is_file():
            source = local
        else:
            source = _package_directory() / name
            if not source.is_file():
                raise FileNotFoundError(
                    f"remote code file {name} named in auto_map is neither in {model_dir} "
                    f"nor in the modeling_rexbert package"
                )
            plan.add(PlannedFile(name, source=source, note="remote code copied from modeling_rexbert"))
        pending.extend(f"{module}.py" for module in get_relative_imports(str(source)))


def publish_as_modernbert(model_dir: Path, config: dict, plan: UploadPlan) -> None:
    """Make the plan a ModernBERT-typed checkpoint: renamed `config.json`, no Python files, a tokenizer config
    without `auto_map` whose `model_max_length` does not exceed the model's positions, and every JSON file in
    the form each supported client reads (`modeling_rexbert.client_files`)."""
    from modeling_rexbert.configuration_rexbert import as_modernbert_dict

    for planned in [f for f in plan.files if f.path_in_repo.endswith(".py")]:
        plan.files.remove(planned)
        plan.skipped.append(
            (
                planned.path_in_repo,
                "RexBERT remote code; a ModernBERT checkpoint needs none (--remote-code keeps it)",
            )
        )
    tokenizer_config = None
    tokenizer_path = model_dir / "tokenizer_config.json"
    if tokenizer_path.is_file():
        tokenizer_config = json.loads(tokenizer_path.read_text(encoding="utf-8"))
        tokenizer_config.pop("auto_map", None)
        positions = config.get("max_position_embeddings")
        if positions and tokenizer_config.get("model_max_length", 0) > positions:
            tokenizer_config["model_max_length"] = positions
    add_client_files(model_dir, plan, as_modernbert_dict(config), tokenizer_config, renamed=True)


def add_client_files(
    model_dir: Path,
    plan: UploadPlan,
    config: dict | None = None,
    tokenizer_config: dict | None = None,
    renamed: bool = False,
) -> None:
    """Plan the ModernBERT directory's JSON files in the form every supported client reads the same way
    (`renamed`: `config` is a RexBERT config published as ModernBERT)."""
    from modeling_rexbert.client_files import client_files

    for relative, content in client_files(model_dir, config, tokenizer_config).items():
        on_disk = model_dir / relative
        if content is None:
            plan.files = [f for f in plan.files if f.path_in_repo != relative]
            plan.skipped.append(
                (relative, "sentence-transformers 6 module file; the published form needs none")
            )
        elif not on_disk.is_file() or json.loads(on_disk.read_text(encoding="utf-8")) != content:
            note = "in the form every client reads"
            note = f"as ModernBERT, {note}" if renamed and relative == "config.json" else note
            plan.add(PlannedFile(relative, content=_json_bytes(content), note=note))


def _json_bytes(mapping: dict) -> bytes:
    return (json.dumps(mapping, indent=2, sort_keys=True) + "\n").encode()


def plan_model_upload(
    model_dir: str | Path, repo_id: str, card_text: str | None = None, *, remote_code: bool = False
) -> UploadPlan:
    """The upload plan of a saved model directory (see the module docstring for the rules)."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a saved model directory (no config.json)")
    verify_model_dir(model_dir)  # a damaged weights file is refused by name, before anything is sent
    nonfinite = nonfinite_weights(model_dir)
    if nonfinite:
        raise ValueError(f"{model_dir}: weights are nan or inf ({', '.join(nonfinite)}): not published")
    plan = UploadPlan(repo_id, "model", root=model_dir)
    _collect_files(model_dir, plan)
    if not any(path.endswith(".safetensors") for path in plan.paths):
        pickles = ", ".join(path for path, _ in plan.skipped) or "none"
        raise ValueError(
            f"{model_dir} has no .safetensors weights (pickle files: {pickles}); "
            "save with save_pretrained(safe_serialization=True) or run `rexbert convert` first"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") in REMOTE_CODE_MODEL_TYPES:
        if remote_code:
            add_remote_code(model_dir, config, plan)
        else:
            publish_as_modernbert(model_dir, config, plan)
    elif config.get("model_type") == "modernbert":
        add_client_files(model_dir, plan)
    if card_text is not None:
        plan.add(PlannedFile("README.md", content=card_text.encode("utf-8"), note="generated model card"))
    return plan


DATASET_FOLDERS = ("corpus", "report")


def plan_dataset_upload(
    dataset_dir: str | Path,
    repo_id: str,
    card_text: str | None = None,
    data_patterns: tuple[str, ...] = ("*.parquet", "*.jsonl.gz", "*.jsonl"),
) -> UploadPlan:
    """The upload plan of a curated corpus directory: the shards under `corpus/`, the report and its plots
    under `report/`, top-level files and the card."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"dataset directory not found: {dataset_dir}")
    plan = UploadPlan(repo_id, "dataset", replaces=DATASET_FOLDERS, root=dataset_dir)
    _collect_files(dataset_dir, plan, folders=DATASET_FOLDERS)
    if not any(fnmatch.fnmatch(Path(path).name, pattern) for path in plan.paths for pattern in data_patterns):
        raise ValueError(f"{dataset_dir} holds no data files matching {', '.join(data_patterns)}")
    if card_text is not None:
        plan.add(PlannedFile("README.md", content=card_text.encode("utf-8"), note="generated dataset card"))
    return plan


@dataclass
class PushResult:
    """Where the push landed; `changed` is False when every file was already there (no new commit)."""

    commit_url: str
    commit_sha: str
    changed: bool
    deleted: list[str] = field(default_factory=list)  # stale remote files removed by this push


def push(
    plan: UploadPlan,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    large: bool | None = None,
) -> PushResult:
    """Create the repo if needed and commit the plan: its files (unchanged ones are skipped) and the deletion
    of stale files under the folders it replaces.

    `private=None` keeps an existing repo's visibility (new repos get the Hub's default); True/False sets it.
    `revision` is a branch; it is created from `main` when it does not exist yet. `large` sends the files
    from disk through `upload_folder` first (default: when the plan is over `LARGE_PUSH_BYTES`).
    """
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(plan.repo_id, repo_type=plan.repo_type, private=private, exist_ok=True)
    if private is not None:
        api.update_repo_settings(plan.repo_id, repo_type=plan.repo_type, private=private)
    if revision and revision != "main":
        api.create_branch(plan.repo_id, repo_type=plan.repo_type, branch=revision, exist_ok=True)
    head = api.repo_info(plan.repo_id, repo_type=plan.repo_type, revision=revision).sha
    remote = (
        api.list_repo_files(plan.repo_id, repo_type=plan.repo_type, revision=revision)
        if plan.replaces
        else []
    )
    message = commit_message or f"Upload {plan.repo_type} with rexbert push"
    in_last_commit = plan.files
    if large if large is not None else plan.size > LARGE_PUSH_BYTES:
        _upload_from_disk(api, plan, revision, message)
        in_last_commit = [planned for planned in plan.files if planned.source is None]
    operations = [planned.operation() for planned in in_last_commit]
    stale = plan.stale(remote)
    operations += [CommitOperationDelete(path_in_repo=path) for path in stale]
    info: CommitInfo = api.create_commit(
        plan.repo_id,
        repo_type=plan.repo_type,
        operations=operations,
        commit_message=message,
        revision=revision,
    )
    return PushResult(
        commit_url=info.commit_url, commit_sha=info.oid, changed=info.oid != head, deleted=stale
    )


def _upload_from_disk(api: HfApi, plan: UploadPlan, revision: str | None, message: str) -> None:
    """The plan's files that lie in its directory, by `upload_folder` (resumable, committed in batches)."""
    on_disk = [planned for planned in plan.files if planned.source is not None]
    if any(planned.source != plan.root / planned.path_in_repo for planned in on_disk):
        raise ValueError("a large push uploads files from their place in the directory only")
    api.upload_folder(
        repo_id=plan.repo_id,
        repo_type=plan.repo_type,
        folder_path=plan.root,
        # `allow_patterns` are glob patterns: escape the brackets a file name may hold
        allow_patterns=[glob.escape(planned.path_in_repo) for planned in on_disk],
        revision=revision,
        commit_message=message,
    )
