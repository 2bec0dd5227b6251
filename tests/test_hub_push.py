"""`rexbert push` against a local Hub-compatible server: plans, uploads, idempotence, visibility and
branches, error messages, and `from_pretrained` back from the pushed files in a fresh process."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hub_fixtures import RESULTS, model_index_values, results_values, trained_model_dir, write_run_records
from hub_server import LocalHub
from huggingface_hub import ModelCard
from process_helpers import python_json

from hub_cards import make_sentence_transformer
from hub_cards.common import human_bytes
from hub_cards.publish import plan_model_upload
from rexbert.cli import main as rexbert

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_test_write_token"
REPO = "shop-lab/rexbert-tiny"


@pytest.fixture()
def hub(monkeypatch):
    """A fresh local Hub; huggingface_hub's offline switch (set for the whole suite in conftest and read
    at import) is turned off for this test only."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with LocalHub(token=TOKEN) as server:
        yield server


@pytest.fixture()
def model_dir(tmp_path):
    """A copy of the tiny trained model with eval results, a pickle the push must leave out, and a
    trainer checkpoint folder."""
    target = tmp_path / "model"
    shutil.copytree(trained_model_dir(), target)
    write_run_records(target)
    (target / "training_args.bin").write_bytes(b"\x80\x04pickle")
    (target / "checkpoint-10").mkdir()
    (target / "checkpoint-10" / "model.safetensors").write_bytes(b"stale")
    return target


def push(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `rexbert push ...` through the real CLI dispatcher; returns (status, stdout, stderr)."""
    status = rexbert(["push", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_dry_run_lists_files_and_sizes_without_network(hub, model_dir, capsys):
    status, out, _ = push(capsys, "model", str(model_dir), REPO, "--dry-run", "--endpoint", hub.endpoint)
    assert status == 0
    assert hub.requests == []
    size = human_bytes((model_dir / "model.safetensors").stat().st_size)
    assert re.search(rf"model\.safetensors\s+{re.escape(size)}\n", out)
    for name in ("README.md", "config.json  ", "tokenizer.json", "eval/results.json"):
        assert name in out
    assert "(as ModernBERT, in the form every client reads)" in out
    assert "skipped modeling_rexbert.py: RexBERT remote code" in out
    assert "skipped training_args.bin: pickle-capable format" in out
    assert "checkpoint-10" not in out
    assert not (model_dir / "README.md").exists()
    assert push(capsys, "model", str(model_dir), REPO, "--dry-run", "--write-card")[0] == 0
    assert ModelCard.load(model_dir / "README.md").data.model_name == REPO


PUBLISHED = {
    ".gitattributes",
    "README.md",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "training_summary.json",
    "eval/results.json",
}
REMOTE_CODE = {
    "configuration_rexbert.py",
    "modeling_rexbert.py",
    "heads.py",
    "layers.py",
    "unpadding.py",
    "padded.py",
    "rotary.py",
    "attention.py",
    "mlm_decoder.py",
}


def test_push_uploads_a_modernbert_checkpoint_and_its_card(hub, model_dir, capsys):
    status, out, _ = push(
        capsys, "model", str(model_dir), REPO, "--endpoint", hub.endpoint, "--token", TOKEN, "--private"
    )
    assert status == 0, out + _
    files = hub.files(REPO)
    assert set(files) == PUBLISHED
    for name in ("model.safetensors", "tokenizer.json", "eval/results.json"):
        assert files[name] == (model_dir / name).read_bytes()
    config, local = json.loads(files["config.json"]), json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "modernbert" and config["architectures"] == ["ModernBertForMaskedLM"]
    assert "auto_map" not in config
    legacy = ("global_rope_theta", "local_rope_theta", "global_attn_every_n_layers")  # for older clients
    assert {k: v for k, v in config.items() if k not in ("model_type", "architectures", *legacy)} == {
        k: v for k, v in local.items() if k not in ("model_type", "architectures", "auto_map")
    }
    assert config["global_rope_theta"] == local["rope_parameters"]["full_attention"]["rope_theta"]
    tokenizer_config = json.loads(files["tokenizer_config.json"])
    assert (
        "auto_map" not in tokenizer_config
        and tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    )
    assert hub.repo(REPO).private is True
    card = ModelCard(files["README.md"].decode())
    assert model_index_values(card) == results_values(RESULTS)
    assert "trust_remote_code" not in card.text and "custom_code" not in card.data.tags
    assert "RexBertForMaskedLM.from_pretrained" in card.text  # how package users get the fast path
    assert ("POST", "/api/validate-yaml") in hub.requests  # the card went through the server's validator
    assert f"pushed {len(files) - 1} files" in out  # all but the repo's own .gitattributes


def test_remote_code_flag_keeps_the_rexbert_type_and_its_code(hub, model_dir, capsys):
    argv = ("model", str(model_dir), REPO, "--endpoint", hub.endpoint, "--token", TOKEN, "--remote-code")
    status, out, _ = push(capsys, *argv)
    assert status == 0, out + _
    files = hub.files(REPO)
    assert set(files) == PUBLISHED | REMOTE_CODE
    for name in ("model.safetensors", "config.json", "modeling_rexbert.py", "padded.py"):
        assert files[name] == (model_dir / name).read_bytes()
    assert json.loads(files["config.json"])["model_type"] == "rexbert"
    card = ModelCard(files["README.md"].decode())
    assert "trust_remote_code=True" in card.text and "custom_code" in card.data.tags


def test_repush_is_idempotent_and_changes_make_one_commit(hub, model_dir, capsys):
    argv = ("model", str(model_dir), REPO, "--endpoint", hub.endpoint, "--token", TOKEN)
    assert push(capsys, *argv)[0] == 0
    history = list(hub.repo(REPO).history)
    status, out, _ = push(capsys, *argv)
    assert status == 0 and "no new commit" in out
    assert hub.repo(REPO).history == history
    (model_dir / "extra_notes.json").write_text("{}")
    assert push(capsys, *argv)[0] == 0
    assert len(hub.repo(REPO).history) == len(history) + 1
    assert "extra_notes.json" in hub.files(REPO)


def test_revision_goes_to_a_branch_and_public_switches_visibility(hub, model_dir, capsys):
    argv = ("model", str(model_dir), REPO, "--endpoint", hub.endpoint, "--token", TOKEN)
    assert push(capsys, *argv, "--private")[0] == 0
    main_files = hub.files(REPO)
    (model_dir / "notes.json").write_text('{"v": 2}')
    assert push(capsys, *argv, "--revision", "v2", "--public")[0] == 0
    assert "notes.json" in hub.files(REPO, revision="v2")
    assert hub.files(REPO) == main_files  # main untouched
    assert hub.repo(REPO).private is False


@pytest.mark.parametrize(
    "case, expected",
    [
        ("bad-token", "authentication failed (HTTP 401)"),
        ("missing-repo", "repository shop-lab/rexbert-tiny not found"),
        ("server-error", "had a server error (HTTP 503)"),
        ("unreachable", "cannot reach"),
    ],
)
def test_hub_errors_give_clear_messages(hub, model_dir, capsys, case, expected):
    token, endpoint = TOKEN, hub.endpoint
    if case == "bad-token":
        token = "hf_wrong"
    elif case == "missing-repo":
        hub.fail(404, path_contains="/preupload/", message="Repository not found", code="RepoNotFound")
    elif case == "server-error":
        hub.fail(503, path_contains="/api/repos/create", message="Service Unavailable")
    else:
        endpoint = "http://127.0.0.1:9"  # discard port: nothing listens there
    status, _, err = push(capsys, "model", str(model_dir), REPO, "--endpoint", endpoint, "--token", token)
    assert status == 1
    assert expected in err
    assert "Traceback" not in err


def test_invalid_card_metadata_is_reported(hub, model_dir, capsys):
    card = model_dir / "README.md"
    card.write_text("---\nmodel-index:\n- name: x\n  results:\n  - task: {type: fill-mask}\n---\n# card\n")
    status, _, err = push(
        capsys, "model", str(model_dir), REPO, "--endpoint", hub.endpoint, "--token", TOKEN, "--no-card"
    )
    assert status == 1 and "Invalid metadata in README.md" in err and "Traceback" not in err


def test_pickle_only_model_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "rexbert"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    status, _, err = push(capsys, "model", str(tmp_path), REPO, "--dry-run", "--no-card")
    assert status == 2 and "no .safetensors weights" in err and "pytorch_model.bin" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "repo_id", ["shop-lab/rexbert tiny", "shop-lab/rexbert/tiny", "shop-lab/rexbert..tiny"]
)
def test_a_repo_id_the_hub_refuses_is_refused_by_the_dry_run(model_dir, capsys, repo_id):
    status, out, err = push(capsys, "model", str(model_dir), repo_id, "--dry-run")
    assert status == 2 and not out and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: rexbert push: repo id {repo_id!r}: "), err


def test_a_model_with_nan_weights_is_not_published(model_dir, capsys):
    """A diverged model (its files intact, their checksums recorded) is refused, naming a tensor."""
    import torch
    from safetensors.torch import load_file, save_file

    from rexbert_core.safe_outputs import record

    weights = load_file(model_dir / "model.safetensors")
    name = sorted(weights)[0]
    weights[name][0] = float("nan")
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    record(model_dir, ["model.safetensors"])
    status, out, err = push(capsys, "model", str(model_dir), REPO, "--dry-run")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"weights are nan or inf (model.safetensors:{name}): not published" in err
    assert torch.isnan(load_file(model_dir / "model.safetensors")[name]).any()


def test_missing_remote_code_is_taken_from_the_package(model_dir):
    import modeling_rexbert

    (model_dir / "attention.py").unlink()
    config = json.loads((model_dir / "config.json").read_text())
    del config["auto_map"]
    (model_dir / "config.json").write_text(json.dumps(config))
    plan = plan_model_upload(model_dir, REPO, remote_code=True)
    planned = {f.path_in_repo: f for f in plan.files}
    assert planned["attention.py"].source.parent.resolve() == Path(modeling_rexbert.__file__).parent.resolve()
    auto_map = json.loads(planned["config.json"].content)["auto_map"]
    assert auto_map["AutoConfig"] == "configuration_rexbert.RexBertConfig"
    assert auto_map["AutoModel"] == "modeling_rexbert.RexBertModel"
    assert auto_map["AutoModelForSequenceClassification"] == "heads.RexBertForSequenceClassification"


def test_auto_map_pairs_and_missing_code_files(model_dir, capsys):
    """auto_map values may be [slow, fast] pairs (AutoTokenizer); a module file found nowhere is an error."""
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"]["AutoTokenizer"] = [None, "tokenization_shop.ShopTokenizerFast"]
    (model_dir / "config.json").write_text(json.dumps(config))
    status, _, err = push(capsys, "model", str(model_dir), REPO, "--dry-run", "--remote-code")
    assert status == 2 and "remote code file tokenization_shop.py named in auto_map" in err
    (model_dir / "tokenization_shop.py").write_text("from .modeling_rexbert import RexBertModel\n")
    assert "tokenization_shop.py" in plan_model_upload(model_dir, REPO, remote_code=True).paths


def test_dataset_push(hub, tmp_path, capsys):
    import pandas as pd
    from test_hub_cards import REPORT

    (tmp_path / "corpus").mkdir()
    (tmp_path / "report").mkdir()
    pd.DataFrame({"id": ["a"], "text": ["t"], "source": ["listing"], "domain": ["ecommerce"]}).to_parquet(
        tmp_path / "corpus" / "00000.parquet"
    )
    (tmp_path / "report" / "report.json").write_text(json.dumps(REPORT))
    (tmp_path / "report" / "state.pkl").write_bytes(b"\x80\x04")
    for intermediate in ("work", "rejects", "logs"):
        (tmp_path / intermediate).mkdir()
        (tmp_path / intermediate / "00000.jsonl").write_text('{"text": "rejected"}\n')
    status, out, err = push(
        capsys, "dataset", str(tmp_path), "shop-lab/ecom-sample", "--endpoint", hub.endpoint, "--token", TOKEN
    )
    assert status == 0, out
    files = hub.files("shop-lab/ecom-sample", repo_type="dataset")
    assert {
        "README.md",
        "corpus/00000.parquet",
        "report/report.json",
        "report/domain_distribution.png",
    } <= set(files)
    assert "report/state.pkl" not in files
    assert not any(path.split("/")[0] in ("work", "rejects", "logs") for path in files)
    assert "skipping rejects/: intermediate output" in err
    assert files["corpus/00000.parquet"] == (tmp_path / "corpus" / "00000.parquet").read_bytes()


CHILD = textwrap.dedent("""
    import json, sys
    sys.modules["modeling_rexbert"] = None  # the package is not available: transformers' own classes load it
    import torch
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer
    repo, texts = sys.argv[1], json.loads(sys.argv[2])
    tokenizer = AutoTokenizer.from_pretrained(repo)
    model = AutoModelForMaskedLM.from_pretrained(repo).eval()
    encoder = AutoModel.from_pretrained(repo).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
        hidden = encoder(**batch).last_hidden_state
    from sentence_transformers import SentenceTransformer
    sentences = SentenceTransformer(repo, device="cpu")
    embeddings = sentences.encode(texts)
    print(json.dumps({"classes": [type(model).__name__, type(encoder).__name__],
                      "sentence_classes": type(sentences[0].auto_model).__name__,
                      "ids": batch["input_ids"].tolist(), "mask": batch["attention_mask"].tolist(),
                      "logits": logits.tolist(), "hidden": hidden.tolist(), "embeddings": embeddings.tolist()}))
""")


def _real(values, mask) -> torch.Tensor:
    """Per-token outputs at real positions (what sits at padding depends on the attention backend)."""
    return torch.tensor(values)[torch.tensor(mask).bool()]


@pytest.mark.slow
def test_pushed_repo_loads_without_the_package_or_remote_code(hub, model_dir, tmp_path):
    """`rexbert push` in its own process, told where the Hub is only by HF_ENDPOINT; then the repo is loaded
    by id in a fresh process (online mode, empty cache, `modeling_rexbert` unavailable, no
    trust_remote_code) with transformers' ModernBERT classes and sentence-transformers: the outputs equal
    those of the local directory. This package's classes load the same repo too, on the fast path."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    import modeling_rexbert

    make_sentence_transformer(model_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN=TOKEN)
    command = [sys.executable, "-m", "rexbert", "push", "model", str(model_dir), REPO]
    pushed = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert pushed.returncode == 0 and "pushed" in pushed.stdout, pushed.stderr[-2000:]
    assert "1_Pooling/config.json" in hub.files(REPO) and not any(p.endswith(".py") for p in hub.files(REPO))

    texts = ["red running shoes", "fast shipping, would buy again"]
    env.pop("PYTHONPATH", None)
    remote = python_json(CHILD, REPO, json.dumps(texts), env=env, cwd=tmp_path, timeout=120)
    assert remote["classes"] == ["ModernBertForMaskedLM", "ModernBertModel"]
    assert remote["sentence_classes"] == "ModernBertModel"
    model = modeling_rexbert.RexBertForMaskedLM.from_pretrained(model_dir).eval()
    batch = AutoTokenizer.from_pretrained(model_dir)(texts, padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == remote["ids"]
    with torch.no_grad():
        local = model(**batch)
        local_hidden = model.model(**batch).last_hidden_state
    torch.testing.assert_close(
        _real(remote["logits"], remote["mask"]), _real(local.logits, remote["mask"]), rtol=0, atol=1e-5
    )
    torch.testing.assert_close(
        _real(remote["hidden"], remote["mask"]), _real(local_hidden, remote["mask"]), rtol=0, atol=1e-5
    )
    embeddings = SentenceTransformer(str(model_dir), device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(torch.tensor(remote["embeddings"]), embeddings, rtol=0, atol=1e-5)
    assert any(
        path.endswith("/resolve/" + hub.repo(REPO).branches["main"] + "/model.safetensors")
        for _, path in hub.requests
    )

    # with the package: the RexBERT classes read the ModernBERT-typed repo and run the unpadded path
    fast = python_json(CHILD_WITH_PACKAGE, REPO, json.dumps(texts), env=env, cwd=tmp_path, timeout=120)
    assert fast["config"] == ["rexbert", ["RexBertForMaskedLM"]]
    torch.testing.assert_close(torch.tensor(fast["logits"]), local.logits, rtol=0, atol=1e-6)


CHILD_WITH_PACKAGE = textwrap.dedent("""
    import json, sys
    import torch
    from transformers import AutoTokenizer
    from modeling_rexbert import RexBertForMaskedLM
    repo, texts = sys.argv[1], json.loads(sys.argv[2])
    model = RexBertForMaskedLM.from_pretrained(repo).eval()
    batch = AutoTokenizer.from_pretrained(repo)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    print(json.dumps({"config": [model.config.model_type, model.config.architectures], "logits": logits.tolist()}))
""")


def _write_shards(corpus: Path, count: int) -> None:
    import pandas as pd

    for old in corpus.glob("*.parquet"):
        old.unlink()
    for index in range(count):
        frame = {
            "id": [f"d{index}"],
            "text": [f"shard {index}"],
            "source": ["listing"],
            "domain": ["ecommerce"],
        }
        pd.DataFrame(frame).to_parquet(corpus / f"{index:05d}.parquet")


@pytest.mark.parametrize("large", [False, True], ids=["one-commit", "upload-folder"])
def test_dataset_repush_with_fewer_shards_leaves_exactly_the_local_shards(hub, tmp_path, capsys, large):
    from huggingface_hub import HfApi
    from test_hub_cards import REPORT

    repo, corpus = "shop-lab/ecom-shards", tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.json").write_text(json.dumps(REPORT))
    large_flag = ["--large"] if large else []
    common = ["--endpoint", hub.endpoint, "--token", TOKEN, *large_flag]
    _write_shards(corpus, 3)
    assert push(capsys, "dataset", str(tmp_path), repo, *common)[0] == 0
    # the large path commits the files from disk (upload_folder), then the generated card
    assert len(hub.repo(repo, "dataset").commits) == (3 if large else 2)  # the repo's initial commit first
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.upload_file(repo_id=repo, repo_type="dataset", path_or_fileobj=b"kept", path_in_repo="notes/extra.md")

    _write_shards(corpus, 1)
    status, dry, _ = push(capsys, "dataset", str(tmp_path), repo, "--dry-run")
    assert status == 0 and "remote files under corpus/, report/ that are not listed here are deleted" in dry
    status, out, _ = push(capsys, "dataset", str(tmp_path), repo, *common)
    assert status == 0, out
    assert "deleted corpus/00001.parquet" in out and "deleted corpus/00002.parquet" in out
    files = hub.files(repo, repo_type="dataset")
    remote_corpus = {path for path in files if path.startswith("corpus/")}
    assert remote_corpus == {f"corpus/{path.name}" for path in corpus.iterdir()} == {"corpus/00000.parquet"}
    assert files["corpus/00000.parquet"] == (corpus / "00000.parquet").read_bytes()
    assert files["notes/extra.md"] == b"kept"  # outside the folders a corpus push owns
    assert "README.md" in files and "report/report.json" in files
    status, out, _ = push(capsys, "dataset", str(tmp_path), repo, *common)
    assert status == 0 and "already has these files; no new commit" in out
