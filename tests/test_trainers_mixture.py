"""MixtureStream: realised proportions follow the schedule, the stream is a function of its seed,
resuming from a saved state continues it exactly, and dry sources behave as declared."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from trainers.collator import GuidedMLMCollator
from trainers.cursors import SourceExhaustedError
from trainers.mixture import MixtureSchedule, MixtureStream
from trainers.packing import PackedRows
from trainers.schedules import BatchSizeSchedule
from trainers.stream_checkpoint import read_mixture_state, write_mixture_state

TOLERANCE = (
    0.04  # realised share of a source vs the schedule's mean share over a bin of >= 1,600 rows (~3.5 sd)
)


@pytest.fixture(scope="module")
def sample_texts():
    from rexbert_core.sample_corpus import sample_documents

    docs = sample_documents(seed=0)
    return (
        [d["text"] for d in docs if d["source"] == "general"],
        [d["text"] for d in docs if d["source"] != "general"],
    )


@pytest.fixture(scope="module")
def tokenizer(sample_texts):
    from modeling_rexbert.tokenization import train_bpe_tokenizer

    return train_bpe_tokenizer(sample_texts[0][:60] + sample_texts[1][:60], vocab_size=512)


@pytest.fixture(scope="module")
def sources(sample_texts, tokenizer):
    general, ecom = sample_texts
    return {
        "general": PackedRows.from_texts("general", general, tokenizer, 32),
        "ecom": PackedRows.from_texts("ecom", ecom, tokenizer, 32),
    }


def make_stream(sources, tokenizer, seed=0, max_steps=400, **kwargs):
    schedule = kwargs.pop(
        "schedule", MixtureSchedule.interpolated({"general": 0.9, "ecom": 0.1}, {"general": 0.1, "ecom": 0.9})
    )
    collator = GuidedMLMCollator(tokenizer)
    return MixtureStream(
        sources,
        schedule,
        collator,
        batch_size=kwargs.pop("batch_size", 16),
        max_steps=max_steps,
        seed=seed,
        **{"mask_rate": 0.3, **kwargs},
    )


def take(stream, n):
    iterator = iter(stream)
    return [next(iterator) for _ in range(n)]


def test_realised_proportions_follow_the_schedule(sources, tokenizer):
    stream = make_stream(sources, tokenizer)
    batches = take(stream, 400)
    ecom_share = np.array([(b["source_ids"] == 1).float().mean().item() for b in batches])
    for start in range(0, 400, 100):  # four bins of 100 batches x 16 rows
        expected = np.mean([stream.schedule.weights(s / 400)[1] for s in range(start, start + 100)])
        assert abs(ecom_share[start : start + 100].mean() - expected) < TOLERANCE, (start, expected)
    # the rows really come from the source they are labelled with
    ecom_ids = {tuple(sources["ecom"][i]["input_ids"].tolist()) for i in range(len(sources["ecom"]))}
    first = batches[-1]
    for row, source in zip(
        first["labels"].where(first["labels"] != -100, first["input_ids"]), first["source_ids"]
    ):
        assert (tuple(row.tolist()) in ecom_ids) == (source.item() == 1)


def test_same_seed_same_stream_other_seed_other_stream(sources, tokenizer):
    a, b = (
        take(make_stream(sources, tokenizer, seed=5), 15),
        take(make_stream(sources, tokenizer, seed=5), 15),
    )
    c = take(make_stream(sources, tokenizer, seed=6), 15)
    for x, y in zip(a, b):
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert any(not torch.equal(x["input_ids"], z["input_ids"]) for x, z in zip(a, c))


def test_restored_state_continues_the_stream_exactly(sources, tokenizer, tmp_path):
    warmup = BatchSizeSchedule(16, start=4, warmup_steps=10)
    full = take(make_stream(sources, tokenizer, seed=2, batch_size=warmup, grad_accum=2), 60)
    first = make_stream(sources, tokenizer, seed=2, batch_size=warmup, grad_accum=2)
    take(first, 40)  # the state is a function of the batch index, whatever was read ahead
    write_mixture_state(first.state_at(25), tmp_path)
    resumed = make_stream(sources, tokenizer, seed=2, batch_size=warmup, grad_accum=2)
    resumed.restore(read_mixture_state(tmp_path))
    for expected, got in zip(full[25:], take(resumed, 35)):
        assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert [len(b["input_ids"]) for b in full[:6]] == [4, 4, 5, 5, 6, 6]  # 4 + 12 * step / 10, rounded down
    with pytest.raises(ValueError, match="seed"):
        make_stream(sources, tokenizer, seed=3).restore(read_mixture_state(tmp_path))


def test_dry_source_recycles_with_a_log_or_stops(sources, tokenizer, caplog):
    small = {
        "general": sources["general"],
        "ecom": PackedRows.from_texts("ecom", ["a tiny shop listing"] * 30, tokenizer, 32),
    }
    rows = len(small["ecom"])
    only_ecom = MixtureSchedule.constant({"ecom": 1.0, "general": 0.0})
    with caplog.at_level(logging.WARNING, logger="trainers.mixture"):
        stream = make_stream(small, tokenizer, schedule=only_ecom, batch_size=4)
        take(stream, rows)  # 4 epochs' worth
    assert "'ecom' ran dry" in caplog.text and stream.cursors["ecom"].epoch >= 3
    assert stream.state_at(rows).epochs["ecom"] == 4
    stopping = make_stream(small, tokenizer, schedule=only_ecom, batch_size=4, on_exhausted="stop")
    with pytest.raises(SourceExhaustedError, match=f"'ecom' ran dry after {rows} rows"):
        take(stopping, rows)


def test_bad_streams_are_refused(sources, tokenizer):
    with pytest.raises(KeyError, match="'reviews'"):
        make_stream(sources, tokenizer, schedule=MixtureSchedule.constant({"reviews": 1.0}))
    with pytest.raises(ValueError, match="on_exhausted"):
        make_stream(sources, tokenizer, on_exhausted="loop")


def test_processes_share_out_exactly_the_single_process_stream(sources, tokenizer):
    """Two data-parallel processes with 2 accumulation steps (as torchrun would run them) train on
    the batches one process accumulating 4 would have produced, interleaved, and agree on the state
    to checkpoint."""
    single = take(make_stream(sources, tokenizer, seed=4, grad_accum=4), 24)
    shards = []
    for rank in range(2):
        stream = make_stream(sources, tokenizer, seed=4, grad_accum=2)
        stream.shard(2, rank)
        shards.append(take(stream, 12))
        assert stream.step_of(8) == 2  # global batch 8: each process's 5th micro-batch, step 2
    for index, expected in enumerate(single):
        got = shards[index % 2][index // 2]
        assert all(torch.equal(expected[k], got[k]) for k in expected)
    resumed = make_stream(sources, tokenizer, seed=4, grad_accum=2)
    resumed.shard(2, 1)
    resumed.restore(make_stream(sources, tokenizer, seed=4, grad_accum=4).state_at(16))
    assert all(torch.equal(single[17][k], v) for k, v in next(iter(resumed)).items())


def test_dataloader_workers_build_the_same_batches_in_the_same_order(sources, tokenizer):
    """With W DataLoader workers each building every W-th batch of its process, the loader yields exactly
    the batches of a single in-process iteration (sharded by process too)."""
    from torch.utils.data import DataLoader

    for shards, rank in ((1, 0), (2, 1)):
        direct = make_stream(sources, tokenizer, seed=5, grad_accum=2)
        direct.shard(shards, rank)
        expected = take(direct, 9)
        loaded = make_stream(sources, tokenizer, seed=5, grad_accum=2)
        loaded.shard(shards, rank)
        loader = DataLoader(loaded, batch_size=None, num_workers=2)
        got = [batch for batch, _ in zip(loader, range(9))]
        for want, have in zip(expected, got, strict=True):
            assert all(torch.equal(want[k], have[k]) for k in want)


def test_streaming_sources_resume_and_recycle_like_map_style(sample_texts, tokenizer):
    import datasets

    from trainers.packing import StreamingPackedSource

    general, ecom = sample_texts
    streamed = {
        "general": StreamingPackedSource(
            "general", datasets.Dataset.from_dict({"text": general}).to_iterable_dataset(), tokenizer, 32
        ),
        "ecom": StreamingPackedSource(
            "ecom", datasets.Dataset.from_dict({"text": ecom[:3]}).to_iterable_dataset(), tokenizer, 32
        ),
    }
    full = take(make_stream(streamed, tokenizer, seed=8), 40)  # the small ecom source recycles
    resumed = make_stream(streamed, tokenizer, seed=8)
    resumed.restore(make_stream(streamed, tokenizer, seed=8).state_at(30))
    for expected, got in zip(full[30:], take(resumed, 10)):
        assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert resumed.cursors["ecom"].epoch >= 1
