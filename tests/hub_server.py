"""A small in-memory Hugging Face Hub, served on 127.0.0.1 for the push and download tests.

It answers the part of the Hub's HTTP API that `huggingface_hub` uses to create repos, validate card
metadata, upload files in "regular" mode (ndjson commits with base64 content), create branches, change
visibility, and download files back (`resolve`, repo info with siblings, the file tree). Every stored
file keeps the git blob sha1 as its etag, so re-uploading unchanged files is a no-op exactly as on the
Hub. Repos are private to a server instance; a `token` turns on authentication and `fail(...)` injects
HTTP errors so the CLI's error messages can be tested.

Why not a package: `hf-local-hub` needs a binary it does not ship (see stack-facts.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
MODEL_INDEX_RESULT_KEYS = ("task", "dataset", "metrics")


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob, which the Hub returns as a regular file's oid and etag."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    """One repository: branches point at commits, a commit is a full snapshot {path: bytes}."""

    repo_id: str
    repo_type: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def commit(self, branch: str, files: dict[str, bytes], summary: str) -> str:
        parent = self.branches.get(branch, "")
        digest = hashlib.sha1(f"{parent}\n{len(self.history)}\n{summary}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha1(files[path])}\n".encode())
        sha = digest.hexdigest()
        self.commits[sha] = dict(files)
        self.branches[branch] = sha
        self.history.append({"sha": sha, "branch": branch, "summary": summary, "parent": parent})
        return sha

    def resolve(self, revision: str) -> str | None:
        """A branch name or a full commit sha to a commit sha (None when unknown)."""
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


@dataclass
class InjectedError:
    status: int
    method: str | None
    path_contains: str | None
    message: str
    code: str | None
    times: int


def validate_card_metadata(content: str, repo_type: str) -> list[str]:
    """Check a README's YAML header the way the Hub does for the keys our cards write.

    Returns a list of error messages (empty when valid): the YAML must parse to a mapping, list-valued
    keys must be lists of strings, and every model-index result needs a task type, a dataset name and type,
    and numeric metrics with a type.
    """
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, flags=re.DOTALL)
    if match is None:
        return []  # no metadata is allowed (the Hub only warns)
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        return [f"YAML does not parse: {error}"]
    if not isinstance(meta, dict):
        return ["metadata must be a YAML mapping"]
    errors = []
    for key in ("tags", "datasets", "language", "base_model"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, str) or all(isinstance(v, str) for v in value)):
            errors.append(f'"{key}" must be a string or a list of strings')
    if repo_type == "model" and "model-index" in meta:
        errors.extend(_model_index_errors(meta["model-index"]))
    return errors


def _model_index_errors(model_index) -> list[str]:
    if not isinstance(model_index, list) or not model_index:
        return ['"model-index" must be a non-empty list']
    errors = []
    for entry in model_index:
        if not entry.get("name"):
            errors.append('"model-index[].name" is required')
        for result in entry.get("results", []):
            missing = [key for key in MODEL_INDEX_RESULT_KEYS if key not in result]
            if missing:
                errors.append(f"model-index result is missing {missing}")
                continue
            if not result["task"].get("type"):
                errors.append('"model-index[].results[].task.type" is required')
            if not (result["dataset"].get("name") and result["dataset"].get("type")):
                errors.append('"model-index[].results[].dataset" needs "name" and "type"')
            for metric in result["metrics"]:
                if not metric.get("type") or not isinstance(metric.get("value"), (int, float)):
                    errors.append(f"metric {metric} needs a type and a numeric value")
    return errors


class LocalHub:
    """The server and its state; use as a context manager or call `start()` / `stop()`."""

    def __init__(self, token: str | None = None):
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.errors: list[InjectedError] = []
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(
        self,
        status: int,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        message: str = "injected error",
        code: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching requests with `status`, an X-Error-Message and, if given, an
        X-Error-Code (e.g. "RepoNotFound", "RevisionNotFound", as the Hub sends them)."""
        self.errors.append(InjectedError(status, method, path_contains, message, code, times))

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        repo = self.repo(repo_id, repo_type)
        return repo.commits[repo.resolve(revision)]

    def take_injected_error(self, method: str, path: str) -> InjectedError | None:
        with self.lock:
            for error in self.errors:
                if (error.method in (None, method)) and (
                    error.path_contains is None or error.path_contains in path
                ):
                    error.times -= 1
                    if error.times <= 0:
                        self.errors.remove(error)
                    return error
        return None


def _make_handler(hub: LocalHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        # ---- plumbing ------------------------------------------------------------------------
        def _send(
            self,
            status: int,
            body: bytes = b"",
            headers: dict | None = None,
            content_type: str = "application/json",
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload, headers: dict | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), headers)

        def _error(self, status: int, message: str, code: str | None = None) -> None:
            headers = {"X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._json(status, {"error": message}, headers)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _authorized(self) -> bool:
            return hub.token is None or self.headers.get("Authorization") == f"Bearer {hub.token}"

        def _dispatch(self) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            injected = hub.take_injected_error(self.command, path)
            if injected is not None:
                return self._error(injected.status, injected.message, injected.code)
            # Like the Hub: a wrong token is refused on every request, a missing one on writes only.
            writes = self.command in ("POST", "PUT", "DELETE") and path != "/api/validate-yaml"
            presented = self.headers.get("Authorization") is not None
            if (writes or presented) and not self._authorized():
                return self._error(401, "Invalid credentials in Authorization header")
            for pattern, handler in ROUTES:
                if pattern[0] == self.command or (pattern[0] == "GET" and self.command == "HEAD"):
                    match = re.fullmatch(pattern[1], path)
                    if match:
                        return handler(self, **match.groupdict())
            hub.unhandled.append((self.command, path))
            self._error(404, f"no route for {self.command} {path}")

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

        def _repo(self, kind: str, repo_id: str) -> Repo | None:
            repo = hub.repos.get((REPO_TYPES.get(kind, kind), repo_id))
            if repo is None or (repo.private and not self._authorized()):
                self._error(404, f"Repository {repo_id} not found", "RepoNotFound")
                return None
            return repo

        def _revision(self, repo: Repo, revision: str) -> str | None:
            sha = repo.resolve(revision)
            if sha is None:
                self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            return sha

        # ---- write API -----------------------------------------------------------------------
        def create_repo(self) -> None:
            payload = json.loads(self._body())
            repo_type = payload.get("type") or "model"
            repo_id = (
                f"{payload['organization']}/{payload['name']}"
                if payload.get("organization")
                else payload["name"]
            )
            url = f"{hub.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
            if (repo_type, repo_id) in hub.repos:
                return self._json(409, {"error": "You already created this repo", "url": url})
            repo = Repo(
                repo_id,
                repo_type,
                private=payload.get("visibility") == "private" or bool(payload.get("private")),
            )
            repo.commit(
                "main",
                {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                "initial commit",
            )
            hub.repos[(repo_type, repo_id)] = repo
            self._json(200, {"url": url, "name": repo_id})

        def validate_yaml(self) -> None:
            payload = json.loads(self._body())
            errors = validate_card_metadata(payload["content"], payload.get("repoType", "model"))
            if errors:
                return self._json(400, {"errors": [{"message": e} for e in errors]})
            self._json(200, {"warnings": []})

        def preupload(self, kind: str, repo_id: str, revision: str) -> None:
            repo = self._repo(kind, repo_id)
            sha = repo and self._revision(repo, revision)
            if sha is None:
                return
            current = repo.commits[sha]
            files = []
            for item in json.loads(self._body())["files"]:
                oid = git_blob_sha1(current[item["path"]]) if item["path"] in current else None
                files.append(
                    {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid}
                )
            self._json(200, {"files": files, "commitOid": sha})

        def commit(self, kind: str, repo_id: str, revision: str) -> None:
            repo = self._repo(kind, repo_id)
            sha = repo and self._revision(repo, revision)
            if sha is None:
                return
            files = dict(repo.commits[sha])
            summary = ""
            for line in self._body().splitlines():
                item = json.loads(line)
                value = item["value"]
                if item["key"] == "header":
                    summary = value.get("summary", "")
                elif item["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "deletedFile":
                    files.pop(value["path"], None)
                elif item["key"] == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: c for p, c in files.items() if not p.startswith(prefix)}
                else:  # lfsFile would need the LFS batch API, which this server does not offer
                    return self._error(400, f"unsupported commit operation {item['key']}")
            branch = revision if revision in repo.branches else "main"
            new_sha = repo.commit(branch, files, summary)
            url = f"{hub.endpoint}/{URL_PREFIX[repo.repo_type]}{repo_id}/commit/{new_sha}"
            self._json(200, {"success": True, "commitOid": new_sha, "commitUrl": url, "pullRequestUrl": None})

        def create_branch(self, kind: str, repo_id: str, branch: str) -> None:
            repo = self._repo(kind, repo_id)
            if repo is None:
                return
            if branch in repo.branches:
                return self._error(409, f"Reference already exists: {branch}")
            body = self._body()
            start = (json.loads(body).get("startingPoint") if body else None) or "main"
            sha = self._revision(repo, start)
            if sha is not None:
                repo.branches[branch] = sha
                self._json(200, {})

        def settings(self, kind: str, repo_id: str) -> None:
            repo = self._repo(kind, repo_id)
            if repo is None:
                return
            payload = json.loads(self._body())
            if "private" in payload:
                repo.private = bool(payload["private"])
            if "visibility" in payload:
                repo.private = payload["visibility"] == "private"
            self._json(200, {"private": repo.private})

        # ---- read API ------------------------------------------------------------------------
        def repo_info(self, kind: str, repo_id: str, revision: str = "main") -> None:
            repo = self._repo(kind, repo_id)
            sha = repo and self._revision(repo, revision)
            if sha is None:
                return
            siblings = [{"rfilename": path} for path in sorted(repo.commits[sha])]
            self._json(200, {"id": repo_id, "sha": sha, "private": repo.private, "siblings": siblings})

        def tree(self, kind: str, repo_id: str, revision: str, path: str | None = None) -> None:
            path = path or ""
            repo = self._repo(kind, repo_id)
            sha = repo and self._revision(repo, revision)
            if sha is None:
                return
            recursive = "true" in parse_qs(urlsplit(self.path).query).get("recursive", [])
            prefix = path.strip("/") + "/" if path.strip("/") else ""
            entries, folders = [], set()
            for file_path, content in sorted(repo.commits[sha].items()):
                if not file_path.startswith(prefix):
                    continue
                rest = file_path[len(prefix) :]
                if "/" in rest and not recursive:
                    folders.add(prefix + rest.split("/")[0])
                    continue
                entries.append(
                    {"type": "file", "path": file_path, "size": len(content), "oid": git_blob_sha1(content)}
                )
            if prefix and not entries and not folders:
                return self._error(404, f"{path} does not exist", "EntryNotFound")
            entries += [{"type": "directory", "path": folder, "oid": ""} for folder in sorted(folders)]
            self._json(200, entries)

        def resolve(self, repo_id: str, revision: str, path: str, kind: str = "models") -> None:
            repo = self._repo(kind, repo_id)
            sha = repo and self._revision(repo, revision)
            if sha is None:
                return
            content = repo.commits[sha].get(path)
            if content is None:
                return self._error(404, f"Entry not found: {path}", "EntryNotFound")
            headers = {"ETag": f'"{git_blob_sha1(content)}"', "X-Repo-Commit": sha}
            self._send(200, content, headers, content_type="application/octet-stream")

    repo_id = r"(?P<repo_id>[^/]+(?:/[^/]+)?)"
    kind = r"(?P<kind>models|datasets|spaces)"
    ROUTES = [
        (("POST", r"/api/repos/create"), Handler.create_repo),
        (("POST", r"/api/validate-yaml"), Handler.validate_yaml),
        (("POST", rf"/api/{kind}/{repo_id}/preupload/(?P<revision>[^/]+)"), Handler.preupload),
        (("POST", rf"/api/{kind}/{repo_id}/commit/(?P<revision>[^/]+)"), Handler.commit),
        (("POST", rf"/api/{kind}/{repo_id}/branch/(?P<branch>[^/]+)"), Handler.create_branch),
        (("PUT", rf"/api/{kind}/{repo_id}/settings"), Handler.settings),
        (("GET", rf"/api/{kind}/{repo_id}/revision/(?P<revision>[^/]+)"), Handler.repo_info),
        (("GET", rf"/api/{kind}/{repo_id}/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?"), Handler.tree),
        (("GET", rf"/api/{kind}/{repo_id}"), Handler.repo_info),
        (
            ("GET", rf"/(?P<kind>datasets|spaces)/{repo_id}/resolve/(?P<revision>[^/]+)/(?P<path>.+)"),
            Handler.resolve,
        ),
        (("GET", rf"/{repo_id}/resolve/(?P<revision>[^/]+)/(?P<path>.+)"), Handler.resolve),
    ]
    return Handler
