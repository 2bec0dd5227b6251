"""Every supported client generation reads the published model the same way.

Builds the directories `rexbert convert --to modernbert` publishes (a masked-LM checkpoint with phase-1
RoPE thetas, global 10,000, so a client falling back to its default 160,000 shows; a sequence classifier; a
sentence-transformers bi-encoder, and one with a Dense projection after pooling; a cross-encoder), computes
their outputs with this package, then, for each client, builds a virtual environment from the package
registry under `--venvs` (kept and reused; never this project's environment) and runs `client_probe.py`
there, which loads every directory the way that client's users do and writes its outputs. Each output is
compared with this package's to `--tolerance` (1e-5):

    python -m bench.client_matrix [--clients all|NAME,...] [--venvs /tmp/rexbert-clients] [--out outputs/bench]

Clients: transformers from ModernBERT's first release (4.48) with sentence-transformers 3.4; transformers
4.57 with sentence-transformers 4.1 and 5.1; infinity-emb 0.0.78 (its torch engine; it installs
transformers 4.57 and sentence-transformers 3.4); optimum-onnx 0.1.0 (ONNX export of the masked LM with its
tokenizer, run by ONNX Runtime); and this environment (transformers 5.23, sentence-transformers 6.2).
text-embeddings-inference is a Rust server and cannot run here: its config contract (the fields its
`ModernBertConfig` struct requires) is checked from its source in `tests/test_client_files.py`.
Writes client_matrix.json and client_matrix.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rexbert_core.tables import markdown_table

PROBE = Path(__file__).with_name("client_probe.py")
TORCH_PIN = "torch==2.13.0"
# What a transformers + sentence-transformers client loads (client_probe.py `check_<name>`).
MODEL_CHECKS = ["tokenizer", "base", "classifier", "bi_encoder", "dense_bi_encoder", "cross_encoder"]
CLIENTS: dict[str, dict] = {
    "transformers 4.48 + sentence-transformers 3.4": {
        "pins": ["transformers==4.48.3", "sentence-transformers==3.4.1", "numpy<2"],
        "checks": MODEL_CHECKS,
    },
    "transformers 4.57 + sentence-transformers 4.1": {
        "pins": ["transformers==4.57.6", "sentence-transformers==4.1.0"],
        "checks": MODEL_CHECKS,
    },
    "transformers 4.57 + sentence-transformers 5.1": {
        "pins": ["transformers==4.57.6", "sentence-transformers==5.1.2"],
        "checks": MODEL_CHECKS,
    },
    "infinity-emb 0.0.78": {
        "pins": ["infinity-emb[torch]==0.0.78", "transformers==4.57.6"],
        "checks": ["infinity"],
    },
    "optimum-onnx 0.1.0": {
        "pins": ["optimum-onnx[onnxruntime]==0.1.0", "transformers==4.57.6"],
        "checks": ["onnx_fill_mask"],
    },
    "this environment (transformers 5.23 + sentence-transformers 6.2)": {
        "pins": None,
        "checks": MODEL_CHECKS,
    },
}
TEXTS = [
    "wireless earbuds with charging case, 24h battery, for running and the gym, sweat resistant",
    "stainless steel water bottle 750 ml",
    "the phone case fits well and the buttons work; the [MASK] is bright",
    "running shoes for men, breathable mesh, size 10, " * 3 + "and a matching pair of socks",
]
# No text starts or ends with whitespace: sentence-transformers before 6 strips every text before tokenizing
# (measured: a text ending in a space gets one token fewer in 3.4, 4.1 and 5.1 than in 6.2, and another
# embedding, 0.10 apart); that is the clients' input handling, not the published files.
PAIRS = [["earbuds for running", TEXTS[0]], ["kettle", TEXTS[1]], ["phone case", TEXTS[2]]]


def build_fixtures(root: Path) -> None:
    """The published directories and `texts.json`, from tiny random models (no weights can be downloaded)."""
    import transformers
    from sentence_transformers import SentenceTransformer, models
    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers import ModernBertConfig

    from hub_cards import make_sentence_transformer
    from modeling_rexbert.client_files import write_client_files
    from modeling_rexbert.convert import modernbert_to_rexbert, rexbert_to_modernbert
    from modeling_rexbert.tokenization import tokenizer_config_kwargs, train_bpe_tokenizer

    tokenizer = train_bpe_tokenizer([t.replace("[MASK]", "screen") for t in TEXTS] * 20, vocab_size=320)
    settings = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4)
    settings.update(max_position_embeddings=256, local_attention=16, num_labels=3)
    settings.update(layer_types=["full_attention", "sliding_attention"] * 2)
    settings.update(rope_parameters={  # phase 1: global theta 10,000
        "full_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    })  # fmt: skip
    for name, head in (("masked_lm", "ForMaskedLM"), ("classifier", "ForSequenceClassification")):
        torch.manual_seed(0)
        model = getattr(transformers, "ModernBert" + head)(
            ModernBertConfig(**tokenizer_config_kwargs(tokenizer), **settings)
        )
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.1)
        model.eval().save_pretrained(root / "saved" / name)
        tokenizer.save_pretrained(root / "saved" / name)
        modernbert_to_rexbert(root / "saved" / name, root / "rexbert" / name)
        rexbert_to_modernbert(root / "rexbert" / name, root / name)
    make_sentence_transformer(root / "rexbert" / "masked_lm", pooling="mean", max_seq_length=64)
    rexbert_to_modernbert(root / "rexbert" / "masked_lm", root / "bi_encoder")
    with_dense = SentenceTransformer(str(root / "rexbert" / "masked_lm"), device="cpu")
    torch.manual_seed(0)
    with_dense.append(models.Dense(64, 32, activation_function=torch.nn.Tanh()))
    with_dense.save(str(root / "rexbert" / "dense"))
    rexbert_to_modernbert(root / "rexbert" / "dense", root / "dense_bi_encoder")
    torch.manual_seed(0)
    cross = CrossEncoder(str(root / "saved" / "masked_lm"), num_labels=1, device="cpu")  # a new head
    cross.save(str(root / "cross_encoder"))
    write_client_files(root / "cross_encoder")
    (root / "texts.json").write_text(json.dumps({"texts": TEXTS, "pairs": PAIRS}))


def reference_outputs(root: Path, out: Path) -> None:
    """This package's outputs: the RexBERT classes for the checkpoints, sentence-transformers 6.2 on them."""
    sys.path.insert(0, str(PROBE.parent))
    import client_probe

    import modeling_rexbert
    from eval_suites.models import register_model_types

    register_model_types()
    checks = [*MODEL_CHECKS, "infinity", "onnx_fill_mask"]
    client_probe.run(root, out, checks, classes=modeling_rexbert)
    failures = sorted(out.glob("*.error"))
    if failures:  # the reference must exist: a failure here is a bug of this package, shown in full
        raise RuntimeError("\n".join(f.read_text() for f in failures))


def client_python(name: str, pins: list[str], venvs: Path) -> Path:
    """The client's virtual environment (built once: torch first, then the pins)."""
    folder = venvs / "".join(c if c.isalnum() else "-" for c in name.lower())
    python = folder / "bin" / "python"
    if (folder / ".complete").is_file():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, TORCH_PIN], check=True)
    subprocess.run([*pip, *pins], check=True)
    (folder / ".complete").write_text(" ".join(pins))
    return python


def compare(reference: Path, got: Path, tolerance: float) -> dict[str, str]:
    """check -> "ok (max diff d)" or what differs."""
    results = {}
    for wanted in sorted(got.glob("*.npy")):
        check = wanted.stem
        mine = np.load(reference / wanted.name, allow_pickle=False)
        theirs = np.load(wanted, allow_pickle=False)
        if mine.shape != theirs.shape:
            results[check] = f"shape {theirs.shape} != {mine.shape}"
        else:
            diff = (
                float(np.abs(mine.astype(np.float64) - theirs.astype(np.float64)).max()) if mine.size else 0.0
            )
            results[check] = f"{'ok' if diff <= tolerance else 'DIFFERS'} ({diff:.1e})"
    for failure in sorted(got.glob("*.error")):
        results[failure.stem] = "FAILED: " + failure.read_text().strip().splitlines()[-1][:160]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="all", help=f"all, or names from: {'; '.join(CLIENTS)}")
    parser.add_argument("--venvs", default="/tmp/rexbert-clients")
    parser.add_argument("--out", default="outputs/bench")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()
    chosen = list(CLIENTS) if args.clients == "all" else [c.strip() for c in args.clients.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "published"
        build_fixtures(root)
        reference_outputs(root, Path(scratch) / "reference")
        table = {}
        for name in chosen:
            started = time.perf_counter()
            spec = CLIENTS[name]
            python = (
                Path(sys.executable)
                if spec["pins"] is None
                else client_python(name, spec["pins"], Path(args.venvs))
            )
            got = Path(scratch) / "clients" / str(len(table))
            got.mkdir(parents=True)
            subprocess.run(
                [str(python), str(PROBE), str(root), str(got), ",".join(spec["checks"])],
                check=False, capture_output=True, text=True, cwd=scratch,
            )  # fmt: skip
            table[name] = compare(Path(scratch) / "reference", got, args.tolerance)
            print(f"{name}: {table[name]} ({time.perf_counter() - started:.0f} s)", flush=True)
    checks = sorted({check for results in table.values() for check in results})
    rows = [[name, *(table[name].get(check, "-") for check in checks)] for name in table]
    markdown = markdown_table(["client", *checks], rows)
    (out / "client_matrix.json").write_text(
        json.dumps({"tolerance": args.tolerance, "clients": table}, indent=2)
    )
    (out / "client_matrix.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
