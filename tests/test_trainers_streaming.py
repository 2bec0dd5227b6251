"""Streaming sources at scale: every row's `StreamPosition` resumes the pass exactly after reading one
document again; a stream restored from saved positions continues the uninterrupted one; processes and
DataLoader workers read disjoint files (the tokenizer runs in the workers); the Trainer saves the positions
of the batches it trained on and a resumed run trains on the same batches with the same losses."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from trainers import packing
from trainers.collator import GuidedMLMCollator
from trainers.mixture import MixtureSchedule, MixtureStream
from trainers.packing import PackedRows, StreamingPackedSource, StreamPosition

FILES = ("alpha", "bravo", "charlie", "delta")  # a marker word per file, found again in decoded rows
SEQ_LEN = 32


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four jsonl files of sample texts (some longer than a row, some blank), their file's marker word before
    every word; a tokenizer trained on them."""
    from modeling_rexbert.tokenization import train_bpe_tokenizer
    from rexbert_core.sample_corpus import sample_documents

    root = tmp_path_factory.mktemp("streaming")
    texts = [d["text"] for d in sample_documents(seed=5) if d["source"] in ("listing", "review")]
    paths = []
    for index, marker in enumerate(FILES):
        part = [" ".join(f"{marker} {word}" for word in text.split()) for text in texts[index::4][:60]] + [""]
        paths.append(root / f"{index}-{marker}.jsonl")
        paths[-1].write_text("".join(json.dumps({"text": text}) + "\n" for text in part))
    tokenizer = train_bpe_tokenizer(texts[:200] + list(FILES) * 50, vocab_size=600)
    return {"files": [str(p) for p in paths], "tokenizer": tokenizer, "texts": texts}


def streaming_source(corpus, name="ecom") -> StreamingPackedSource:
    import datasets

    dataset = datasets.load_dataset("json", data_files=corpus["files"], split="train", streaming=True)
    return StreamingPackedSource(name, dataset, corpus["tokenizer"], SEQ_LEN)


def same_rows(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        torch.equal(torch.as_tensor(x["input_ids"]), torch.as_tensor(y["input_ids"]))
        and torch.equal(torch.as_tensor(x["position_ids"]), torch.as_tensor(y["position_ids"]))
        for x, y in zip(a, b)
    )


def test_every_position_resumes_the_pass_after_one_document(corpus, monkeypatch):
    source = streaming_source(corpus)
    items = list(source.rows_from(StreamPosition(0)))
    rows = [row for row, _ in items]
    mid_document = [k for k, (_, position) in enumerate(items) if position.offset > 0]
    assert mid_document and len(mid_document) < len(items)  # rows end inside and between documents

    read = []
    original = packing._document_batches

    def counting(*args, **kwargs):
        for texts, states in original(*args, **kwargs):
            read.append(len(texts))
            yield texts, states

    monkeypatch.setattr(packing, "_document_batches", counting)
    documents = sum(len(open(path).readlines()) for path in corpus["files"])
    for k in [0, 1, mid_document[0], mid_document[-1], len(items) // 2, len(items) - 2]:
        read.clear()
        resumed = [row for row, _ in source.rows_from(items[k][1])]
        assert same_rows(resumed, rows[k + 1 :]), k
        if k == len(items) - 2:  # near the end: only the last documents are read again
            assert sum(read) < documents / 10


def make_stream(sources, tokenizer, seed=3, max_steps=40, schedule=None, **kwargs):
    schedule = schedule or MixtureSchedule.interpolated(
        {"general": 0.5, "ecom": 0.5}, {"general": 0.2, "ecom": 0.8}
    )
    stream = MixtureStream(
        sources,
        schedule,
        GuidedMLMCollator(tokenizer),
        batch_size=kwargs.pop("batch_size", 4),
        max_steps=max_steps,
        seed=seed,
        mask_rate=0.3,
        **kwargs,
    )
    stream.report_positions = True
    return stream


@pytest.fixture(scope="module")
def sources(corpus):
    general = PackedRows.from_texts("general", corpus["texts"][::3], corpus["tokenizer"], SEQ_LEN)
    return {"general": general, "ecom": streaming_source(corpus)}


def equal_batches(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a if k != "stream_positions")


def test_restored_positions_continue_the_stream(sources, corpus):
    stream = make_stream(sources, corpus["tokenizer"])
    iterator = iter(stream)
    full = [next(iterator) for _ in range(30)]
    resumed = make_stream(sources, corpus["tokenizer"])
    resumed.restore(stream.state_at(20))
    resumed.record_consumed(full[19]["stream_positions"])
    resumed.restore_positions(resumed.positions_record(workers=0), workers=0)
    iterator = iter(resumed)
    assert all(equal_batches(full[k], next(iterator)) for k in range(20, 30))
    assert full[29]["stream_positions"]["positions"]["ecom"]["dataset_state"] is not None


def markers(rows_or_batch, tokenizer) -> set[str]:
    text = " ".join(tokenizer.batch_decode(rows_or_batch["input_ids"]))
    return {marker for marker in FILES if marker in text}


def test_processes_and_workers_read_disjoint_files(sources, corpus):
    """Two processes: each reads two of the four files; in each, two DataLoader workers read one file each
    and tokenize it themselves. Only streaming rows are drawn, so every row comes from those files."""
    only_ecom = {"general": 1e-9, "ecom": 1.0}
    seen = {}
    for rank in (0, 1):
        stream = make_stream(sources, corpus["tokenizer"], schedule=MixtureSchedule.constant(only_ecom))
        stream.shard(2, rank)
        stream.check_readers(2)
        loader = DataLoader(stream, batch_size=None, num_workers=2)
        batches = [batch for batch, _ in zip(loader, range(12))]
        assert [b["stream_positions"]["worker"] for b in batches] == [0, 1] * 6
        for worker in (0, 1):
            seen[rank, worker] = set().union(*(markers(b, corpus["tokenizer"]) for b in batches[worker::2]))
    assert all(len(files) == 1 for files in seen.values()), seen  # one file per process and worker
    assert set().union(*seen.values()) == set(FILES)
    with pytest.raises(Exception, match="cannot feed 3 dataloader workers"):
        stream.check_readers(3)  # two files per process


def test_workers_resume_from_their_own_positions(sources, corpus):
    stream = make_stream(sources, corpus["tokenizer"])
    full = [batch for batch, _ in zip(DataLoader(stream, batch_size=None, num_workers=2), range(14))]
    for batch in full[:8]:  # what a trainer consumed before its checkpoint at batch 8
        stream.record_consumed(batch["stream_positions"])
    record = json.loads(json.dumps(stream.positions_record(workers=2)))  # as saved in the checkpoint
    resumed = make_stream(sources, corpus["tokenizer"])
    resumed.restore(stream.state_at(8))
    resumed.restore_positions(record, workers=2)
    got = [batch for batch, _ in zip(DataLoader(resumed, batch_size=None, num_workers=2), range(6))]
    assert all(equal_batches(a, b) for a, b in zip(full[8:], got, strict=True))
    with pytest.raises(Exception, match="saved by 1 process"):
        resumed.restore_positions(record, workers=3)


def test_trainer_saves_positions_and_resumes_streaming_with_workers(corpus, tmp_path):
    from tests.test_trainers_pretrain import RecordingTrainer, step_losses, tiny_model, training_arguments

    steps, save_at = 8, 4

    def trainer(output, model_seed):
        sources = {
            "general": PackedRows.from_texts("general", corpus["texts"][::3], corpus["tokenizer"], SEQ_LEN),
            "ecom": streaming_source(corpus),
        }
        stream = make_stream(sources, corpus["tokenizer"], max_steps=steps, grad_accum=2)
        stream.report_positions = False  # the trainer turns it on
        args = training_arguments(output, steps, save_at, 2, dataloader_num_workers=2)
        model = tiny_model(corpus["tokenizer"], model_seed)
        return RecordingTrainer(model=model, args=args, train_stream=stream)

    full = trainer(tmp_path / "full", model_seed=0)
    full.train()
    checkpoint = tmp_path / "full" / f"checkpoint-{save_at}"
    saved = json.loads((checkpoint / "stream_positions-0.json").read_text())
    assert saved["workers"] == 2 and set(saved["positions"]) == {"0", "1"}
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(checkpoint, resumed_dir / checkpoint.name)
    resumed = trainer(resumed_dir, model_seed=1)
    resumed.train(resume_from_checkpoint=str(resumed_dir / checkpoint.name))
    expected = full.seen[save_at * 2 :]
    assert len(resumed.seen) == len(expected) == (steps - save_at) * 2
    for (ids_a, labels_a), (ids_b, labels_b) in zip(expected, resumed.seen):
        assert torch.equal(ids_a, ids_b) and torch.equal(labels_a, labels_b)
    for step, loss in step_losses(full, save_at).items():
        assert step_losses(resumed, save_at)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step


def test_held_out_documents_are_never_read_by_any_process(corpus):
    """A recipe's validation documents of a streaming source (its first documents) stay out of every
    process's rows once the stream is split between processes."""
    from trainers.recipes import read_recipe_dict, recipe_from_mapping
    from trainers.sources import RecipeData

    recipe = read_recipe_dict("tiny")
    recipe["sources"] = {
        name: {"data_files": corpus["files"], "streaming": True} for name in ("general", "ecom")
    }
    recipe["validation"] = {"documents_per_source": 5}
    data = RecipeData(recipe_from_mapping(recipe, where="test"))
    tokenizer, whole = corpus["tokenizer"], 10_000  # rows long enough to hold whole documents
    first_file = [json.loads(line)["text"] for line in open(corpus["files"][0])]

    def decoded(rows) -> str:
        return " ".join(tokenizer.batch_decode([row["input_ids"] for row in rows], skip_special_tokens=True))

    validation = decoded(data.validation_packed("ecom", tokenizer, whole).iter_epoch(0, 0))
    held_out = first_file[:5]
    assert all(text in validation for text in held_out) and first_file[5] not in validation
    source = data.packed("ecom", tokenizer, whole)
    source.keep_tail = True
    for rank in (0, 1):
        trained = decoded(row for row, _ in source.for_process(2, rank).rows_from(StreamPosition(0)))
        assert not any(text in trained for text in held_out), rank
    assert first_file[5] in decoded(row for row, _ in source.for_process(2, 0).rows_from(StreamPosition(0)))
