"""Load the published directories the way one client's users do and save what it computes (one `.npy` per
check, or a `.error` file with the failure). Run by `bench/client_matrix.py` inside each client's own virtual
environment, so it imports only that client (torch, transformers, sentence-transformers, infinity-emb,
optimum), never this project:

    python bench/client_probe.py PUBLISHED_DIR OUT_DIR CHECK[,CHECK...]

Per-token outputs are saved with zeros at padding positions: what a model computes there is not an output
(the RexBERT classes return zeros; ModernBERT's sdpa and eager backends return what the padded queries got).
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import torch


def _real_tokens(values: torch.Tensor, attention_mask: torch.Tensor) -> np.ndarray:
    mask = attention_mask.bool().view(*attention_mask.shape, *([1] * (values.dim() - attention_mask.dim())))
    return values.masked_fill(~mask, 0).float().numpy()


def _normalised(embeddings) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=np.float32)
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def _batch(root: Path, texts: list[str]):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(root / "masked_lm"))(texts, padding=True, return_tensors="pt")


def check_tokenizer(root: Path, texts, pairs, classes):
    return _batch(root, texts)["input_ids"].numpy()


def check_base(root: Path, texts, pairs, classes):
    from transformers import AutoModel

    model_class = classes.RexBertModel if classes else AutoModel
    batch = _batch(root, texts)
    model = model_class.from_pretrained(str(root / ("rexbert/masked_lm" if classes else "masked_lm")))
    with torch.no_grad():
        return _real_tokens(model.eval()(**batch).last_hidden_state, batch["attention_mask"])


def check_classifier(root: Path, texts, pairs, classes):
    from transformers import AutoModelForSequenceClassification

    model_class = classes.RexBertForSequenceClassification if classes else AutoModelForSequenceClassification
    batch = _batch(root, texts)
    model = model_class.from_pretrained(str(root / ("rexbert/classifier" if classes else "classifier")))
    with torch.no_grad():
        return model.eval()(**batch).logits.numpy()


def check_bi_encoder(root: Path, texts, pairs, classes):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(root / "bi_encoder"), device="cpu").encode(texts, convert_to_numpy=True)


def check_dense_bi_encoder(root: Path, texts, pairs, classes):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(root / "dense_bi_encoder"), device="cpu")
    return model.encode(texts, convert_to_numpy=True)


def check_cross_encoder(root: Path, texts, pairs, classes):
    from sentence_transformers.cross_encoder import CrossEncoder

    return np.asarray(
        CrossEncoder(str(root / "cross_encoder"), device="cpu").predict([tuple(p) for p in pairs])
    )


def check_infinity(root: Path, texts, pairs, classes):
    if classes:  # the reference: what sentence-transformers computes, unit length
        return _normalised(check_bi_encoder(root, texts, pairs, classes))
    import asyncio

    from infinity_emb import AsyncEmbeddingEngine, EngineArgs

    async def embed():
        engine = AsyncEmbeddingEngine.from_args(
            EngineArgs(
                model_name_or_path=str(root / "bi_encoder"),
                engine="torch",
                device="cpu",
                bettertransformer=False,
            )
        )
        async with engine:
            embeddings, _ = await engine.embed(sentences=texts)
        return embeddings

    return _normalised(asyncio.run(embed()))


def check_onnx_fill_mask(root: Path, texts, pairs, classes):
    batch = _batch(root, texts)
    if classes:
        model = classes.RexBertForMaskedLM.from_pretrained(str(root / "rexbert" / "masked_lm"))
        with torch.no_grad():
            return _real_tokens(model.eval()(**batch).logits, batch["attention_mask"])
    from optimum.exporters.onnx import main_export
    from optimum.onnxruntime import ORTModelForMaskedLM
    from transformers import AutoTokenizer

    exported = Path(tempfile.mkdtemp())
    main_export(str(root / "masked_lm"), output=exported, task="fill-mask")
    if not (exported / "tokenizer.json").is_file():
        raise FileNotFoundError("the export left the tokenizer out")
    tokenizer = AutoTokenizer.from_pretrained(str(exported))
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    logits = ORTModelForMaskedLM.from_pretrained(str(exported))(**batch).logits
    return _real_tokens(torch.as_tensor(np.asarray(logits)), batch["attention_mask"])


def run(root: Path, out: Path, checks: list[str], classes=None) -> None:
    """Every check's output into `out` (`classes`: the RexBERT model classes, for this package's reference)."""
    data = json.loads((root / "texts.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for check in checks:
        try:
            values = globals()[f"check_{check}"](root, data["texts"], data["pairs"], classes)
            np.save(out / f"{check}.npy", np.asarray(values), allow_pickle=False)
        except Exception:  # noqa: BLE001 (a client that fails is a result: recorded, the other checks still run)
            (out / f"{check}.error").write_text(traceback.format_exc())


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(","))
