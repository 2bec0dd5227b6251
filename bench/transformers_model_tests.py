"""transformers' own ModernBERT model tests, run against ModernBERT and against the RexBERT classes.

transformers' `tests/models/modernbert/test_modeling_modernbert.py` (with the common `ModelTesterMixin`
machinery) is the contract for drop-in compatibility. This script copies the test files it needs from a
transformers checkout (the main repository or a fork) into a scratch folder, writes a second copy of the
ModernBERT test file whose classes are the RexBERT ones (listed in transformers' Auto name mappings, which the
common tests read to choose inputs and labels), runs both with pytest, and prints the counts side by side:

    python -m bench.transformers_model_tests --transformers-repo path/to/transformers [--out outputs/bench]

Needs `parameterized` (a test dependency of transformers, not of this project). The pipeline tests are left
out (they download models), and checkout files written for a newer transformers than the installed one are
patched only where an import would fail. Measured with a checkout of transformers 5.5.0.dev0 against the
installed 5.23.0: ModernBERT 103 passed / 16 failed / 74 skipped, RexBERT 104 / 16 / 79; the same 16 fail
for both (`test_config` and the gradient-checkpointing call count: checkout and installed versions differ).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import transformers

from rexbert_core.tables import markdown_table

TEST_FILES = (
    "tests/__init__.py",
    "tests/test_modeling_common.py",
    "tests/test_configuration_common.py",
    "tests/models/__init__.py",
    "tests/models/modernbert",
    "tests/generation",
    "tests/utils",
    "utils/test_module",
)
REXBERT_HEADS = {
    "MODEL_MAPPING_NAMES": "RexBertModel",
    "MODEL_FOR_MASKED_LM_MAPPING_NAMES": "RexBertForMaskedLM",
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": "RexBertForSequenceClassification",
    "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES": "RexBertForTokenClassification",
    "MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES": "RexBertForQuestionAnswering",
    "MODEL_FOR_MULTIPLE_CHOICE_MAPPING_NAMES": "RexBertForMultipleChoice",
}


def copy_tests(checkout: Path, scratch: Path) -> Path:
    """The test files, the installed transformers where the tests look for `src/transformers`, and the
    ModernBERT test file without its pipeline mixin."""
    for relative in TEST_FILES:
        source, target = checkout / relative, scratch / relative
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (scratch / "src").mkdir()
    (scratch / "src" / "transformers").symlink_to(Path(transformers.__file__).parent)
    common = scratch / "tests" / "test_modeling_common.py"
    text = common.read_text()
    text = re.sub(  # an import only tensor-parallel tests use, renamed between versions
        r"^( *)from transformers\.integrations\.tensor_parallel import (_get_parameter_tp_plan)\n",
        r"\1try:\n\1    from transformers.integrations.tensor_parallel import \2\n\1except ImportError:\n\1    \2 = None\n",
        text,
        flags=re.MULTILINE,
    )
    common.write_text(text)
    test_file = scratch / "tests" / "models" / "modernbert" / "test_modeling_modernbert.py"
    test_file.write_text(
        test_file.read_text().replace(
            "from ...test_pipeline_mixin import PipelineTesterMixin",
            "class PipelineTesterMixin:  # left out: the pipeline tests download models\n    pass",
        )
    )
    return test_file


def write_rexbert_copy(test_file: Path) -> Path:
    """The ModernBERT test file with the RexBERT config and classes under the ModernBERT names."""
    text = test_file.read_text()
    registration = "from transformers.models.auto import modeling_auto as _auto\n" + "".join(
        f'_auto.{mapping}["rexbert"] = "{name}"\n' for mapping, name in REXBERT_HEADS.items()
    )
    aliases = "".join(
        f"    from modeling_rexbert import {name} as {name.replace('RexBert', 'ModernBert', 1)}\n"
        for name in REXBERT_HEADS.values()
    )
    replacements = [
        (
            r"from transformers import AutoTokenizer, ModernBertConfig, is_torch_available\n",
            "from transformers import AutoTokenizer, is_torch_available\n\n"
            "from modeling_rexbert import RexBertConfig as ModernBertConfig\n",
        ),
        (
            r"from \.\.\.test_configuration_common import",
            registration + "from ...test_configuration_common import",
        ),
        (
            r"    from transformers import \(\n        MODEL_FOR_PRETRAINING_MAPPING,\n(?:        ModernBert\w+,\n)+    \)\n",
            "    from transformers import MODEL_FOR_PRETRAINING_MAPPING\n" + aliases,
        ),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, lambda _: replacement, text)
        if count != 1:
            raise SystemExit(f"{test_file}: expected one match of {pattern!r}; the test file changed layout")
    copy = test_file.with_name("test_modeling_rexbert_as_modernbert.py")
    copy.write_text(text)
    return copy


def run(test_file: Path, scratch: Path) -> dict[str, int]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(scratch / "utils"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(test_file.relative_to(scratch)),
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    result = subprocess.run(command + ["-W", "ignore"], cwd=scratch, env=env, capture_output=True, text=True)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-500:]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}
    if not counts:
        raise SystemExit(f"pytest did not run {test_file.name}: {summary}")
    counts["failed_tests"] = sorted(set(re.findall(r"^(?:SUB)?FAILED\S* \S+::(\w+)", result.stdout, re.M)))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transformers-repo", type=Path, required=True, help="a transformers checkout")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"))
    args = parser.parse_args()
    if not (args.transformers_repo / "tests" / "models" / "modernbert").is_dir():
        raise SystemExit(
            f"{args.transformers_repo} is not a transformers checkout (no tests/models/modernbert)"
        )
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        modernbert_file = copy_tests(args.transformers_repo, scratch)
        rexbert_file = write_rexbert_copy(modernbert_file)
        results = {"ModernBERT": run(modernbert_file, scratch), "RexBERT": run(rexbert_file, scratch)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transformers_model_tests.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        [name, r.get("passed", 0), r.get("failed", 0), r.get("skipped", 0)] for name, r in results.items()
    ]
    lines = [markdown_table(["classes", "passed", "failed", "skipped"], rows, align="lrrr"), ""]
    lines += [f"{name} failing: {', '.join(r['failed_tests']) or 'none'}" for name, r in results.items()]
    (args.out / "transformers_model_tests.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
