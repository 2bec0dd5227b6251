"""ModernBERT-style tokenizers: special ids, templates, round trips, [MASK] spacing, training."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from modeling_rexbert.tokenization import (
    MODERNBERT_VOCAB_SIZE,
    build_modernbert_tokenizer,
    tokenizer_config_kwargs,
    train_bpe_tokenizer,
)

OLMO_JSON = "tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json"


def _texts(shared_data: Path, file: str, column: str, n: int) -> list[str]:
    table = pq.read_table(shared_data / file, columns=[column])
    return [text for text in table.column(column).to_pylist()[:n] if text]


@pytest.fixture(scope="module")
def modernbert_tok(shared_data):
    return build_modernbert_tokenizer(shared_data / OLMO_JSON)


@pytest.fixture(scope="module")
def real_texts(shared_data) -> list[str]:
    """Product descriptions (markdown, unicode, prices), review sentences and encyclopedia text."""
    return (
        _texts(shared_data, "ecommerce_products_vespa/products.parquet", "description", 150)
        + _texts(shared_data, "ecommerce_reviews_liu/product_review_sentences.parquet", "sentence", 300)
        + _texts(shared_data, "general_text/documents.parquet", "text", 20)
    )


@pytest.fixture(scope="module")
def small_tok(real_texts):
    return train_bpe_tokenizer(real_texts, vocab_size=1024)


def test_modernbert_special_ids_and_vocab(modernbert_tok):
    tok = modernbert_tok
    assert (tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.mask_token_id) == (
        50280,
        50281,
        50282,
        50283,
        50284,
    )
    assert len(tok) == MODERNBERT_VOCAB_SIZE == 50368
    assert tok.convert_ids_to_tokens([50285, 50367]) == ["[unused0]", "[unused82]"]
    assert tok.model_input_names == ["input_ids", "attention_mask"]
    assert tok.model_max_length == 8192
    assert tokenizer_config_kwargs(tok) == {
        "vocab_size": 50368,
        "pad_token_id": 50283,
        "cls_token_id": 50281,
        "sep_token_id": 50282,
        "bos_token_id": 50281,
        "eos_token_id": 50282,
    }


def test_base_vocabulary_is_unchanged(modernbert_tok, shared_data):
    """Ordinary text gets exactly the ids of the OLMo tokenizer it was built from."""
    from tokenizers import Tokenizer

    olmo = Tokenizer.from_file(str(shared_data / OLMO_JSON))
    text = "Wireless earbuds, 24h battery - only $19.99! Überraschung."
    assert modernbert_tok(text, add_special_tokens=False).input_ids == olmo.encode(text).ids


def test_single_and_pair_templates(modernbert_tok):
    tok = modernbert_tok
    a, b = "red running shoes", "Nike Air Zoom, size 10"
    ids_a = tok(a, add_special_tokens=False).input_ids
    ids_b = tok(b, add_special_tokens=False).input_ids
    single = tok(a)
    assert single.input_ids == [tok.cls_token_id, *ids_a, tok.sep_token_id]
    assert "token_type_ids" not in single
    pair = tok(a, b)
    assert pair.input_ids == [tok.cls_token_id, *ids_a, tok.sep_token_id, *ids_b, tok.sep_token_id]
    assert pair.attention_mask == [1] * len(pair.input_ids)


def test_mask_token_takes_the_space_before_it(modernbert_tok):
    tok = modernbert_tok
    enc = tok("a [MASK] phone")
    assert tok.convert_ids_to_tokens(enc.input_ids) == ["[CLS]", "a", "[MASK]", "Ġphone", "[SEP]"]
    # same ids as the text without the mask's left space: the mask absorbs it
    assert tok("a[MASK] phone").input_ids == enc.input_ids
    assert tok.decode(enc.input_ids, skip_special_tokens=True) == "a phone"


@pytest.mark.parametrize("which", ["modernbert_tok", "small_tok"])
def test_decode_encode_is_identity_on_real_text(which, request, real_texts):
    tok = request.getfixturevalue(which)
    for text in real_texts[::7]:
        ids = tok(text).input_ids
        assert tok.decode(ids, skip_special_tokens=True) == text


def test_pair_truncation_and_padding(modernbert_tok, real_texts):
    tok = modernbert_tok
    long_a, long_b = real_texts[0], real_texts[1]
    enc = tok(long_a, long_b, truncation="longest_first", max_length=32)
    assert len(enc.input_ids) == 32
    assert enc.input_ids[0] == tok.cls_token_id and enc.input_ids[-1] == tok.sep_token_id
    assert enc.input_ids.count(tok.sep_token_id) == 2
    only_second = tok("short query", long_b, truncation="only_second", max_length=24)
    assert len(only_second.input_ids) == 24
    assert only_second.input_ids[1:3] == tok("short query", add_special_tokens=False).input_ids
    batch = tok(["one", "two three four"], padding=True)
    assert batch.input_ids[0][-1] == tok.pad_token_id and batch.attention_mask[0][-1] == 0


@pytest.mark.parametrize("which", ["modernbert_tok", "small_tok"])
def test_save_load_round_trip_with_autotokenizer(which, request, tmp_path, real_texts):
    tok = request.getfixturevalue(which)
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == len(tok)
    for name in ("unk", "cls", "sep", "pad", "mask"):
        assert getattr(loaded, f"{name}_token_id") == getattr(tok, f"{name}_token_id")
    assert loaded.model_input_names == ["input_ids", "attention_mask"]
    assert loaded.model_max_length == 8192
    for text in [*real_texts[:5], "a [MASK] phone", "x"]:
        assert loaded(text, "pair b").input_ids == tok(text, "pair b").input_ids


def test_trained_tokenizer_specials_and_size(small_tok):
    tok = small_tok
    assert (tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.mask_token_id) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert len(tok) % 64 == 0 and 1024 <= len(tok) < 1024 + 64
    assert tokenizer_config_kwargs(tok)["vocab_size"] == len(tok)
    enc = tok("a [MASK] phone", "second")
    tokens = tok.convert_ids_to_tokens(enc.input_ids)
    assert tokens[0] == "[CLS]" and tokens[2] == "[MASK]" and tokens.count("[SEP]") == 2
    assert tokens[3].startswith("Ġ")


def test_training_is_deterministic_and_fast(real_texts):
    text_bytes = sum(len(t.encode()) for t in real_texts)
    assert text_bytes > 200_000  # "a few hundred KB"
    start = time.perf_counter()
    first = train_bpe_tokenizer(real_texts, vocab_size=2048)
    seconds = time.perf_counter() - start
    second = train_bpe_tokenizer(real_texts, vocab_size=2048)
    assert first.get_vocab() == second.get_vocab()
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    assert seconds < 5.0, f"training took {seconds:.1f}s"  # loose bound: the CPU is shared


def test_bad_inputs(tmp_path, shared_data, small_tok):
    with pytest.raises(FileNotFoundError, match="tokenizer.json not found"):
        build_modernbert_tokenizer(tmp_path / "missing.json")
    small_tok.backend_tokenizer.save(str(tmp_path / "has_specials.json"))
    with pytest.raises(ValueError, match="already defines"):
        build_modernbert_tokenizer(tmp_path / "has_specials.json")
    with pytest.raises(ValueError, match="smaller than"):
        build_modernbert_tokenizer(shared_data / OLMO_JSON, padded_vocab_size=50000)
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_tokenizer(["text"], vocab_size=100)
