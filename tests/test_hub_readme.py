"""Every ```python snippet of the README's integrations section runs, in order, against a tiny trained model
laid out like a `rexbert run` output (`runs/demo/model`, `runs/demo/eval/results.json`); the dry-run
commands of its ```bash snippet run through the real CLI. A snippet that loads the pushed repo
(`from_pretrained("my-org/rexbert-demo")`) reads a ModernBERT-typed copy made as the push makes it
(tests/test_hub_push.py loads the real pushed repo). Results are then checked where a snippet computes
something (the compiled encoder against the eager one, the ONNX graph against eager, the repo's classes)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from hub_fixtures import RESULTS, trained_model_dir

from rexbert.cli import main as rexbert

README = Path(__file__).resolve().parents[1] / "README.md"
SST2 = "glue/SST-2/dev.tsv"


def integrations_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- section:integrations")
    return text[start : text.index("<!-- /section:integrations -->", start)]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", integrations_section(), flags=re.DOTALL)


PYTHON_BLOCKS = code_blocks("python")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A `rexbert run`-shaped output directory holding the tiny trained model and eval results."""
    root = tmp_path_factory.mktemp("readme") / "run"
    shutil.copytree(trained_model_dir(), root / "model")
    (root / "eval").mkdir()
    (root / "eval" / "results.json").write_text(json.dumps(RESULTS))
    return root


PUSHED_REPO = 'from_pretrained("my-org/rexbert-demo")'


def published_copy(run_dir: Path) -> Path:
    """The model as `rexbert push` publishes it (ModernBERT-typed), as a local directory."""
    from modeling_rexbert.convert import rexbert_to_modernbert

    target = run_dir / "published"
    if not target.is_dir():
        rexbert_to_modernbert(run_dir / "model", target)
    return target


def localise(code: str, run_dir: Path, shared: Path | None) -> str:
    if PUSHED_REPO in code:
        code = code.replace(PUSHED_REPO, f'from_pretrained("{published_copy(run_dir)}")')
    code = code.replace("runs/demo", str(run_dir))
    if SST2 in code:
        if shared is None:
            pytest.skip("the SST-2 snippet needs ../shared/data")
        code = code.replace(SST2, str(shared / SST2))
    return code


def test_section_has_the_documented_snippets():
    joined = "\n".join(PYTHON_BLOCKS)
    for needle in (
        'pipeline("fill-mask"',
        'pipeline("feature-extraction"',
        "SentenceTransformer(",
        "get_peft_model",
        "merge_and_unload",
        "Trainer(",
        "torch.compile",
        "torch.onnx.export",
        "build_model_card",
        PUSHED_REPO,
    ):
        assert needle in joined


def test_bash_dry_run_commands(run_dir, capsys):
    commands = [
        line.split("#")[0]
        for block in code_blocks("bash")
        for line in block.splitlines()
        if line.startswith("rexbert push") and "--dry-run" in line
    ]
    assert commands
    for command in commands:
        assert rexbert(shlex.split(localise(command, run_dir, None))[1:]) == 0
        assert "model.safetensors" in capsys.readouterr().out


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(i, marks=pytest.mark.slow)
        if "torch.compile" in block
        else i  # compiling takes tens of seconds
        for i, block in enumerate(PYTHON_BLOCKS)
    ],
)
def test_python_snippet_runs(index, run_dir, request):
    code = PYTHON_BLOCKS[index]
    shared = None
    if SST2 in code:
        shared = request.getfixturevalue("shared_data")
    namespace: dict = {"__name__": f"readme_snippet_{index}"}
    exec(
        compile(localise(code, run_dir, shared), f"README.md integrations snippet {index}", "exec"), namespace
    )
    if "torch.compile" in code:
        check_compiled_matches_eager(namespace, run_dir)
    if "torch.onnx.export" in code:
        check_onnx_matches_eager(namespace, run_dir)
    if PUSHED_REPO in code:
        model = namespace["model"]
        assert type(model).__name__ == "RexBertForMaskedLM" and model.config.model_type == "rexbert"


def check_onnx_matches_eager(namespace: dict, run_dir: Path) -> None:
    import onnxruntime
    from transformers import AutoTokenizer

    batch = AutoTokenizer.from_pretrained(run_dir / "model")(
        ["a longer title: wireless [MASK] with charging case", "mug", "red shoes"],
        padding=True,
        return_tensors="pt",
    )
    session = onnxruntime.InferenceSession(str(run_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {name: tensor.numpy() for name, tensor in batch.items()})
    with torch.no_grad():
        eager = namespace["model"](**batch).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(torch.from_numpy(logits)[real], eager[real], atol=1e-4, rtol=1e-4)


def check_compiled_matches_eager(namespace: dict, run_dir: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    batch = tokenizer(["red running shoes", "fast shipping"], padding=True, return_tensors="pt")
    with torch.no_grad():
        eager = AutoModel.from_pretrained(run_dir / "model").eval()(**batch).last_hidden_state
    real = batch["attention_mask"].bool()  # compiled: the padded path, whose padding positions are not zeros
    torch.testing.assert_close(namespace["hidden"].last_hidden_state[real], eager[real], atol=1e-5, rtol=1e-4)
