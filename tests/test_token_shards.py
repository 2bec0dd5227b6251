"""Tokenize once, memory-map, resume in constant time: `rexbert tokenize` writes token shards with a manifest;
rows cut from them equal the in-memory path's rows (any sequence length, shuffled epochs, held-out
documents, rows across shard files); a mixture stream over shards resumes exactly, its processes touch only
their own rows; truncated shards and another tokenizer are refused in one line; pretraining runs on shards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from rexbert.cli import main as rexbert
from rexbert_core.token_shards import MANIFEST_FILENAME, ShardsManifest, SourceTokens, tokenizer_fingerprint
from trainers.collator import GuidedMLMCollator
from trainers.mixture import MixtureSchedule, MixtureStream
from trainers.packing import PackedRows
from trainers.token_rows import ShardedRows
from trainers.validation import held_out_indices

BLANKS = ["", "   ", None]  # dropped and counted by `rexbert tokenize`, skipped by the in-memory packer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two jsonl files of sample listings and reviews (with blank texts), a tokenizer trained on them, and
    the shards `rexbert tokenize` makes of them (two tasks, one per file)."""
    from modeling_rexbert.tokenization import train_bpe_tokenizer
    from rexbert_core.sample_corpus import sample_documents

    root = tmp_path_factory.mktemp("shards")
    texts = [d["text"] for d in sample_documents(seed=3) if d["source"] in ("listing", "review")]
    tokenizer = train_bpe_tokenizer(texts[:300], vocab_size=600)
    tokenizer.save_pretrained(root / "tokenizer")
    half = len(texts) // 2
    for index, part in enumerate((texts[:half] + BLANKS, BLANKS[:1] + texts[half:])):
        lines = [json.dumps({"text": text, "id": str(row)}) for row, text in enumerate(part)]
        (root / f"part{index}.jsonl").write_text("\n".join(lines) + "\n")
    command = ["tokenize", "--tokenizer", str(root / "tokenizer"), "--output", str(root / "tokens")]
    assert rexbert([*command, "--source", f"ecom={root}/part*.jsonl", "--workers", "2"]) == 0
    return {"root": root, "texts": texts, "tokenizer": tokenizer, "command": command}


def rows_equal(a: dict, b: dict) -> bool:
    return np.array_equal(a["input_ids"], b["input_ids"]) and np.array_equal(
        a["position_ids"], b["position_ids"]
    )


def test_manifest_counts_documents_tokens_and_blanks(corpus):
    manifest = ShardsManifest.load(corpus["root"] / "tokens")
    source = manifest.sources["ecom"]
    assert len(source.shards) == 2 and source.documents == len(corpus["texts"])
    assert source.blank_documents == len(BLANKS) + 1
    expected = sum(len(ids) for ids in corpus["tokenizer"](corpus["texts"])["input_ids"])
    assert source.tokens == expected
    assert [Path(p).name for p in source.inputs] == ["part0.jsonl", "part1.jsonl"]


@pytest.mark.parametrize("seq_len", [64, 200])
def test_shard_rows_equal_the_in_memory_rows(corpus, seq_len):
    tokens = SourceTokens(corpus["root"] / "tokens", "ecom")
    in_memory = PackedRows.from_texts("ecom", corpus["texts"], corpus["tokenizer"], seq_len, shuffle=False)
    sharded = ShardedRows("ecom", tokens, seq_len, shuffle=False)
    assert len(sharded) == len(in_memory)
    assert all(rows_equal(sharded[r], in_memory[r]) for r in range(len(in_memory)))
    crossing = tokens.token_starts[1] // seq_len  # the row that spans the two shard files
    assert rows_equal(sharded[int(crossing)], in_memory[int(crossing)])


def test_a_datasets_source_gives_the_same_shards_as_its_files(corpus, tmp_path):
    """`--dataset NAME=ID`: a `datasets` source (here a local dataset folder; a Hub id the same way), streamed
    by datatrove's reader, tokenizes to the documents and rows the same files give."""
    import shutil

    folder = tmp_path / "ecom-dataset"
    folder.mkdir()
    for part in ("part0.jsonl", "part1.jsonl"):
        shutil.copy(corpus["root"] / part, folder / part)
    command = [
        "tokenize",
        "--tokenizer",
        str(corpus["root"] / "tokenizer"),
        "--output",
        str(tmp_path / "tokens"),
    ]
    assert rexbert([*command, "--dataset", f"ecom={folder}"]) == 0
    from_dataset = ShardsManifest.load(tmp_path / "tokens").sources["ecom"]
    from_files = ShardsManifest.load(corpus["root"] / "tokens").sources["ecom"]
    assert from_dataset.inputs == [str(folder)]
    assert (from_dataset.documents, from_dataset.tokens) == (from_files.documents, from_files.tokens)
    assert from_dataset.blank_documents == from_files.blank_documents
    a = ShardedRows("ecom", SourceTokens(tmp_path / "tokens", "ecom"), 64, shuffle=False)
    b = ShardedRows("ecom", SourceTokens(corpus["root"] / "tokens", "ecom"), 64, shuffle=False)
    assert len(a) == len(b) and all(rows_equal(a[r], b[r]) for r in range(len(b)))


def test_held_out_documents_and_shuffled_epochs_match(corpus):
    tokens = SourceTokens(corpus["root"] / "tokens", "ecom")
    held_out = held_out_indices(16, len(corpus["texts"]), seed=0)
    kept = [text for index, text in enumerate(corpus["texts"]) if index not in set(held_out.tolist())]
    in_memory = PackedRows.from_texts("ecom", kept, corpus["tokenizer"], 96)
    sharded = ShardedRows("ecom", tokens, 96, held_out=held_out)
    for epoch in (0, 3):
        pairs = zip(sharded.iter_epoch(epoch, seed=5), in_memory.iter_epoch(epoch, seed=5), strict=True)
        assert all(rows_equal(a, b) for a, b in pairs)
    validation = PackedRows.from_texts(
        "ecom", [corpus["texts"][i] for i in held_out], corpus["tokenizer"], 96, keep_tail=True, shuffle=False
    )
    from_shards = PackedRows.from_token_ids(
        "ecom", (tokens.document(int(i)) for i in held_out), 96, keep_tail=True, shuffle=False
    )
    assert all(rows_equal(from_shards[r], validation[r]) for r in range(len(validation)))


class CountingRows(ShardedRows):
    """ShardedRows that records which rows were read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: list[int] = []

    def __getitem__(self, index):
        self.read.append(int(index))
        return super().__getitem__(index)


def make_stream(corpus, shards=1, shard_index=0):
    tokens = SourceTokens(corpus["root"] / "tokens", "ecom")
    source = CountingRows("ecom", tokens, 48)
    stream = MixtureStream(
        {"ecom": source},
        MixtureSchedule.constant({"ecom": 1.0}),
        GuidedMLMCollator(corpus["tokenizer"]),
        batch_size=4,
        max_steps=1000,
        seed=11,
        mask_rate=0.3,
    )
    stream.shard(shards, shard_index)
    return stream, source


def take(stream, count):
    iterator = iter(stream)
    return [next(iterator) for _ in range(count)]


def test_resume_equals_uninterrupted_and_ranks_read_only_their_rows(corpus):
    stream, _ = make_stream(corpus)
    whole = take(stream, 12)
    resumed, source = make_stream(corpus)
    resumed.restore(stream.state_at(7))
    for a, b in zip(take(resumed, 5), whole[7:], strict=True):
        assert all(np.array_equal(a[key], b[key]) for key in a)
    assert len(source.read) == 5 * 4  # positioned by arithmetic: no row before batch 7 was read

    ranks = [make_stream(corpus, shards=2, shard_index=rank) for rank in (0, 1)]
    batches = [take(rank_stream, 3) for rank_stream, _ in ranks]
    for index, batch in enumerate(whole[:6]):
        mine = batches[index % 2][index // 2]
        assert all(np.array_equal(batch[key], mine[key]) for key in batch)
    read = [set(source.read) for _, source in ranks]
    assert len(ranks[0][1].read) == len(ranks[1][1].read) == 3 * 4 and not read[0] & read[1]


def test_damaged_shards_and_another_tokenizer_are_refused(corpus, tmp_path, capsys):
    import shutil

    from modeling_rexbert.tokenization import train_bpe_tokenizer

    damaged = tmp_path / "tokens"
    shutil.copytree(corpus["root"] / "tokens", damaged)
    shard = next(damaged.glob("ecom/*.ds"))
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(
        Exception, match=rf"{shard.name} is truncated or damaged: \d+ bytes, the manifest says"
    ):
        SourceTokens(damaged, "ecom")

    other = train_bpe_tokenizer(corpus["texts"][:50], vocab_size=400)
    other.save_pretrained(tmp_path / "other")
    recipe = [
        "--recipe", "tiny", "--set", f"tokenizer.path={tmp_path / 'other'}", "--set", "tokenizer.train_vocab_size=null",
        "--set", "sources.ecom.sample_corpus=null", "--set", f"sources.ecom.shards={corpus['root'] / 'tokens'}",
        "--set", "lexicon.max_docs=50", "--output", str(tmp_path / "run"), "--phase", "general",
    ]  # fmt: skip
    assert rexbert(["pretrain", *recipe]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and "tokenized with another tokenizer" in error


def test_tokenize_resumes_and_refuses_a_changed_command(corpus, capsys):
    manifest = (corpus["root"] / "tokens" / MANIFEST_FILENAME).read_text()
    shard = next((corpus["root"] / "tokens").glob("ecom/*.ds"))
    written = shard.stat().st_mtime_ns
    assert rexbert([*corpus["command"], "--source", f"ecom={corpus['root']}/part*.jsonl"]) == 0
    assert shard.stat().st_mtime_ns == written  # finished tasks are not redone
    assert (corpus["root"] / "tokens" / MANIFEST_FILENAME).read_text() == manifest
    capsys.readouterr()
    assert rexbert([*corpus["command"], "--source", f"ecom={corpus['root']}/part0.jsonl"]) == 2
    assert "sources.ecom" in capsys.readouterr().err


def test_pretraining_reads_the_shards(corpus, tmp_path):
    """`--shards DIR`: the sources DIR holds train from its shards (with held-out validation documents and the
    lexicon decoded from them) with DIR's tokenizer; the recipe's other sources are tokenized with it too. The
    phase's tokenizer stops where the model's positions do."""
    from transformers import AutoTokenizer

    shards = corpus["root"] / "tokens"
    recipe = [
        "--recipe", "tiny", "--shards", str(shards),
        "--set", "lexicon.max_docs=100", "--set", "phases.general.steps=3", "--set", "phases.general.eval_steps=3",
        "--output", str(tmp_path / "run"), "--phase", "general",
    ]  # fmt: skip
    assert rexbert(["pretrain", *recipe]) == 0
    saved = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert (
        saved["sources"]["ecom"]["shards"] == str(shards)
        and saved["sources"]["ecom"]["sample_corpus"] is None
    )
    assert saved["sources"]["general"]["sample_corpus"] == ["general"]  # not in the shards: read as text
    final = tmp_path / "run" / "phase1-general" / "final"
    assert (
        tokenizer_fingerprint(AutoTokenizer.from_pretrained(final))
        == ShardsManifest.load(shards).tokenizer_fingerprint
    )
    assert AutoTokenizer.from_pretrained(final).model_max_length == 128
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert any("eval/loss/ecom" in entry for entry in log)
