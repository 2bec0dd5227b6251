"""Catalogue embedding (`eval_suites/retrieval/encoder.py`, `rexbert embed`) and the fast path inside
models loaded with transformers' ModernBERT classes (`modeling_rexbert.with_rexbert_classes`): the same
embeddings and scores as sentence-transformers on the published model, int8 within its tolerance, chunks that
resume, several processes giving what one gives, and a changed setting refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hub_fixtures import trained_model_dir

from eval_suites.retrieval.encoder import CatalogueEncoder, token_budget_batches
from modeling_rexbert import RexBertModel, with_rexbert_classes
from modeling_rexbert.cpu_linear import ONEDNN_LINEAR_AVAILABLE, OneDnnLinear
from rexbert.cli import main as rexbert

CATALOGUE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "ecommerce_products_vespa"
    / "products.parquet"
)


def _catalogue(rows: int) -> pd.DataFrame:
    """Real marketplace products (title + description) when the shared data is there, else generated ones."""
    if CATALOGUE.is_file():
        return pd.read_parquet(CATALOGUE, columns=["id", "title", "description"]).head(rows)
    from rexbert_core.sample_corpus.eval_sets import sample_esci

    _, products = sample_esci(n_queries=rows)
    return products.rename(columns={"product_id": "id", "product_title": "title", "product_description": "description"}).head(rows)  # fmt: skip


@pytest.fixture(scope="module")
def bi_encoder_dir(tmp_path_factory) -> Path:
    """A published (ModernBERT-typed) bi-encoder with mean pooling, 128 tokens per text."""
    from hub_cards import make_sentence_transformer
    from modeling_rexbert.convert import rexbert_to_modernbert

    scratch = tmp_path_factory.mktemp("bi_encoder")
    shutil.copytree(trained_model_dir(), scratch / "rexbert")
    make_sentence_transformer(scratch / "rexbert", pooling="mean", max_seq_length=128)
    return rexbert_to_modernbert(scratch / "rexbert", scratch / "published")


def _sentence_transformer(directory: Path, pooling: str | None = None):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(directory), device="cpu")
    if pooling:
        model[1].pooling_mode = pooling
    return model


def test_token_budget_batches_cover_every_text_once_within_the_budget():
    lengths = [5, 120, 7, 64, 64, 3, 300, 12]
    batches = token_budget_batches(lengths, max_tokens=128)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[0] == [6]  # longer than the budget: alone, and first
    assert all(sum(lengths[i] for i in batch) <= 128 for batch in batches[1:])
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat, reverse=True)  # similar lengths together


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_the_packed_encoder_gives_sentence_transformers_embeddings(bi_encoder_dir, pooling):
    texts = (_catalogue(96).pipe(lambda f: f.title + " " + f.description)).tolist() + ["kettle", "a"]
    reference = _sentence_transformer(bi_encoder_dir, pooling).encode(texts, normalize_embeddings=True)
    encoder = CatalogueEncoder(_sentence_transformer(bi_encoder_dir, pooling), max_tokens=1024)
    assert encoder.pooling == pooling and isinstance(encoder.model[0].auto_model, RexBertModel)
    if ONEDNN_LINEAR_AVAILABLE:  # float32 on a CPU: the linear layers run through oneDNN
        assert isinstance(encoder.model[0].auto_model.layers[0].mlp.Wi, OneDnnLinear)
    got = encoder.encode(texts)
    assert np.abs(got - reference).max() <= 1e-5
    quantized = CatalogueEncoder(_sentence_transformer(bi_encoder_dir, pooling), int8=True).encode(texts)
    assert (quantized * reference).sum(axis=1).min() >= 0.99


def test_with_rexbert_classes_keeps_sentence_transformers_and_cross_encoder_outputs(bi_encoder_dir, tmp_path):
    from sentence_transformers.cross_encoder import CrossEncoder

    texts = ["wireless earbuds for running", " ".join(["stainless steel kettle"] * 30)]
    plain = _sentence_transformer(bi_encoder_dir)
    fast = with_rexbert_classes(_sentence_transformer(bi_encoder_dir))
    assert type(fast[0].auto_model).__name__ == "RexBertModel"
    assert np.abs(fast.encode(texts) - plain.encode(texts)).max() <= 1e-5
    CrossEncoder(str(bi_encoder_dir), num_labels=1, device="cpu").save(str(tmp_path / "cross"))
    pairs = [("kettle", texts[1]), ("earbuds", texts[0])]
    want = CrossEncoder(str(tmp_path / "cross"), device="cpu").predict(pairs)
    swapped = with_rexbert_classes(CrossEncoder(str(tmp_path / "cross"), device="cpu"))
    assert type(swapped[0].auto_model).__name__ == "RexBertForSequenceClassification"
    assert np.abs(swapped.predict(pairs) - want).max() <= 1e-5


def test_embed_resumes_from_its_chunks_and_workers_agree(bi_encoder_dir, tmp_path, capsys):
    catalogue = _catalogue(300)
    catalogue.to_parquet(tmp_path / "catalogue.parquet")
    base = ["embed", "--model", str(bi_encoder_dir), "--input", str(tmp_path / "catalogue.parquet"),
            "--columns", "title,description", "--chunk-size", "100"]  # fmt: skip
    one = tmp_path / "one"
    assert rexbert([*base, "--output", str(one)]) == 0
    first = np.load(one / "chunks" / "000000.npy")
    (one / "chunks" / "000002.npy").unlink()  # as if interrupted during the last chunk
    (one / "index.json").unlink()
    kept = (one / "chunks" / "000000.npy").stat().st_mtime_ns
    assert rexbert([*base, "--output", str(one)]) == 0
    assert (one / "chunks" / "000000.npy").stat().st_mtime_ns == kept  # finished chunks are not redone
    from eval_suites.retrieval import DenseIndex

    resumed = DenseIndex.load(one)
    assert np.array_equal(resumed.embeddings[:100], first) and resumed.embeddings.shape[0] == len(catalogue)
    reference = _sentence_transformer(bi_encoder_dir).encode(
        resumed.texts, normalize_embeddings=True
    )  # the texts as `rexbert embed` joined them
    assert np.abs(resumed.embeddings - reference).max() <= 1e-5
    two = tmp_path / "two"
    assert rexbert([*base, "--output", str(two), "--workers", "2"]) == 0
    assert np.abs(DenseIndex.load(two).embeddings - resumed.embeddings).max() <= 1e-6
    capsys.readouterr()
    assert rexbert([*base[:-4], "--columns", "title", "--chunk-size", "100", "--output", str(one)]) != 0
    error = capsys.readouterr().err
    assert "columns" in error and str(one) in error  # a changed setting: refused, nothing stale handed back
    assert json.loads((one / "index.json").read_text())["count"] == len(catalogue)


def test_embed_int8_prints_its_agreement(bi_encoder_dir, tmp_path, capsys):
    _catalogue(64).to_parquet(tmp_path / "catalogue.parquet")
    command = ["embed", "--model", str(bi_encoder_dir), "--input", str(tmp_path / "catalogue.parquet"),
               "--columns", "title,description", "--int8", "--output", str(tmp_path / "int8")]  # fmt: skip
    assert rexbert(command) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("int8 against float32"))
    assert float(line.rsplit("min ", 1)[1]) >= 0.99


def test_embed_refuses_a_catalogue_without_text_in_one_line(bi_encoder_dir, tmp_path, capsys):
    pd.DataFrame({"id": ["a", "b"], "title": ["", None], "description": ["<p></p>", " "]}).to_parquet(
        tmp_path / "empty.parquet"
    )
    command = ["embed", "--model", str(bi_encoder_dir), "--input", str(tmp_path / "empty.parquet"),
               "--columns", "title,description", "--output", str(tmp_path / "index")]  # fmt: skip
    assert rexbert(command) == 2
    error = capsys.readouterr().err.strip()
    assert "empty.parquet: no row has text in ['title', 'description'] (2 empty rows)" in error
    assert "Traceback" not in error and not (tmp_path / "index").exists()
