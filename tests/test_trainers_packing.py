"""Sequence packing: every token accounted for, document boundaries kept in position_ids, awkward
documents (empty, longer than a row) handled as declared, map-style and streaming sources alike."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from trainers.packing import PackedRows, SequencePacker, StreamingPackedSource, encode_batch, pack_texts

TEXTS = [
    "Wireless earbuds with a charging case, 24 hours of battery.",
    "",
    "   ",
    None,
    "A short one.",
    " ".join(f"word{i}" for i in range(400)),  # longer than a row
    "Stainless steel water bottle, 750 ml, keeps drinks cold for a day.",
]


@pytest.fixture(scope="module")
def tokenizer():
    from modeling_rexbert.tokenization import train_bpe_tokenizer

    return train_bpe_tokenizer([t for t in TEXTS if t] * 3, vocab_size=300, min_frequency=1)


def documents_of(row):
    """Split a packed row back into its segments at position_ids == 0."""
    starts = np.flatnonzero(row["position_ids"] == 0).tolist() + [len(row["input_ids"])]
    return [row["input_ids"][a:b].tolist() for a, b in zip(starts, starts[1:])]


def test_packing_accounts_for_every_token(tokenizer):
    seq_len = 32
    rows, packer = pack_texts(TEXTS, tokenizer, seq_len, batch_size=3)
    rows = list(rows)
    stats = packer.stats
    expected = [
        ids for ids in (tokenizer(t)["input_ids"] if isinstance(t, str) and t.strip() else [] for t in TEXTS)
    ]
    total = sum(len(ids) for ids in expected)
    assert stats.documents == len(TEXTS) and stats.empty_documents == 3
    assert stats.long_documents == sum(len(ids) > seq_len for ids in expected) >= 1
    assert all(len(r["input_ids"]) == seq_len for r in rows)
    assert stats.rows == len(rows) and stats.tokens == seq_len * len(rows)
    assert stats.tokens + stats.tail_tokens == total  # only the declared tail is dropped
    # the concatenated rows are exactly the token stream, cut at row boundaries
    stream = np.concatenate([r["input_ids"] for r in rows])
    assert stream.tolist() == [i for ids in expected for i in ids][: len(stream)]
    # position ids restart at every document start (and at row starts), counting up inside
    for row in rows:
        positions = row["position_ids"]
        assert positions[0] == 0
        steps = np.diff(positions)
        assert np.all((steps == 1) | (positions[1:] == 0))
        for segment in documents_of(row)[1:]:  # a mid-row restart is a document start
            assert segment[0] == tokenizer.cls_token_id


def test_long_document_is_cut_into_row_sized_pieces(tokenizer):
    long_ids = tokenizer(TEXTS[5])["input_ids"]
    packer = SequencePacker(16)
    rows = packer.add(long_ids)
    assert len(rows) == len(long_ids) // 16
    assert all(r["position_ids"].tolist() == list(range(16)) for r in rows)
    tail = packer.finish()
    assert tail == [] and packer.stats.tail_tokens == len(long_ids) % 16
    kept = SequencePacker(16, keep_tail=True)
    kept.add(long_ids)
    last = kept.finish()
    assert len(last) == 1 and len(last[0]["input_ids"]) == len(long_ids) % 16 and kept.stats.tail_tokens == 0


def test_map_style_and_streaming_sources_give_the_same_rows(tokenizer):
    dataset = datasets.Dataset.from_dict({"text": [t or "" for t in TEXTS] * 4})
    packed = PackedRows.from_dataset("s", dataset, tokenizer, 24, shuffle=False)
    streaming = StreamingPackedSource("s", dataset.to_iterable_dataset(), tokenizer, 24)
    streamed = list(streaming.iter_epoch(0, seed=0))
    assert len(streamed) == len(packed) > 0
    for a, b in zip(packed.iter_epoch(0, seed=0), streamed):
        assert a["input_ids"].tolist() == b["input_ids"].tolist()
        assert a["position_ids"].tolist() == b["position_ids"].tolist()
    assert streaming.stats.empty_documents == 12
    # shuffled epochs are permutations of the same rows, different per epoch
    shuffled = PackedRows.from_dataset("s", dataset, tokenizer, 24)
    first = [r["input_ids"].tolist() for r in shuffled.iter_epoch(0, seed=1)]
    second = [r["input_ids"].tolist() for r in shuffled.iter_epoch(1, seed=1)]
    assert sorted(first) == sorted(second) and first != second


def test_bad_sources_are_reported(tokenizer):
    with pytest.raises(ValueError, match="produced no packed row"):
        PackedRows.from_texts("tiny", ["", "hi"], tokenizer, 512)
    with pytest.raises(KeyError, match="no column 'body'"):
        PackedRows.from_dataset(
            "x", datasets.Dataset.from_dict({"text": ["a"]}), tokenizer, 8, text_column="body"
        )
    with pytest.raises(ValueError, match="at least 2"):
        SequencePacker(1)


def test_encode_batch_matches_the_tokenizer_call(tokenizer):
    texts = [t for t in TEXTS if t and t.strip()]
    assert encode_batch(tokenizer, texts, True) == tokenizer(texts)["input_ids"]
    assert encode_batch(tokenizer, texts, False) == tokenizer(texts, add_special_tokens=False)["input_ids"]


def test_packed_row_encodes_like_its_documents_alone(tokenizer):
    """The packing convention is the model's: a row of several documents gives each document the
    hidden states it gets on its own (no attention across the boundary)."""
    import torch

    from modeling_rexbert import RexBertModel
    from tests.model_helpers import config_for_tokenizer

    torch.manual_seed(0)
    model = RexBertModel(config_for_tokenizer(tokenizer)).eval()
    docs = [TEXTS[0], TEXTS[4], TEXTS[6]]
    lengths = [len(tokenizer(d)["input_ids"]) for d in docs]
    rows, _ = pack_texts(docs, tokenizer, sum(lengths))
    (row,) = list(rows)
    with torch.no_grad():
        packed = model(
            input_ids=torch.tensor(row["input_ids"], dtype=torch.long)[None],
            position_ids=torch.tensor(row["position_ids"], dtype=torch.long)[None],
        ).last_hidden_state[0]
        start = 0
        for doc, length in zip(docs, lengths):
            alone = model(input_ids=torch.tensor([tokenizer(doc)["input_ids"]])).last_hidden_state[0]
            torch.testing.assert_close(packed[start : start + length], alone, rtol=1e-4, atol=1e-5)
            start += length
