"""Damaged data, as users' corpora and disks produce it: one bad line in a large file, a parquet file without
the text column, bytes flipped in a token shard with its size unchanged, an old shard whose ids the tokenizer
does not have. Each case checks what the user sees: the rest of the data goes on with the bad record counted
(its file and line in `rejects/`), or training refuses in one line naming the file and the byte range, before
any damaged token is trained on.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rexbert.cli import main as rexbert
from rexbert_core.safe_outputs import BlockChecks, block_digests
from rexbert_core.token_shards import MANIFEST_FILENAME, ShardsManifest, SourceTokens
from rexbert_core.typed_config import DataError


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    from modeling_rexbert.tokenization import train_bpe_tokenizer
    from rexbert_core.sample_corpus import sample_documents

    texts = [d["text"] for d in sample_documents(seed=5) if d["source"] == "listing"]
    folder = tmp_path_factory.mktemp("tokenizer") / "tokenizer"
    train_bpe_tokenizer(texts[:200], vocab_size=500).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def texts() -> list[str]:
    from rexbert_core.sample_corpus import sample_documents

    return [d["text"] for d in sample_documents(seed=6) if d["source"] == "review"][:120]


def tokenize(tokenizer_dir: Path, output: Path, source: str) -> int:
    return rexbert(
        ["tokenize", "--tokenizer", str(tokenizer_dir), "--output", str(output), "--source", source]
    )


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and "Traceback" not in "\n".join(err), err
    return err[-1]


def rejects(output: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((output / "rejects").glob("*.jsonl")) for line in path.open()]


# ---- bad records while tokenizing --------------------------------------------------------------------


def test_bad_lines_are_counted_and_the_rest_of_the_file_is_tokenized(tokenizer_dir, texts, tmp_path, capsys):
    """Invalid UTF-8, a raw NUL byte in a JSON line (JSON forbids it), a number as text, a list as a record:
    each line is rejected under its own reason with its file and line; every other line is tokenized."""
    lines = [json.dumps({"text": text}).encode() for text in texts]
    bad = {
        10: (b'{"text": "caf\xe9 cr\xe8me"}', "invalid_utf8"),
        20: (b'{"text": "a raw \x00 byte in a complete line"}', "malformed_json"),
        30: (b'{"text": 12345}', "text_not_a_string"),
        40: (b'["a", "list"]', "not_an_object"),
    }
    for row, (line, _) in bad.items():
        lines.insert(row, line)
    data = tmp_path / "reviews.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")

    assert tokenize(tokenizer_dir, tmp_path / "tokens", f"reviews={data}") == 0
    reported = (
        f"reviews: {len(texts)} documents, .* \\(rejected: 1 invalid_utf8, 1 malformed_json, 1 not_an_object, "
        "1 text_not_a_string; see rejects/\\)"
    )
    assert re.search(reported, capsys.readouterr().out)
    source = ShardsManifest.load(tmp_path / "tokens").sources["reviews"]
    assert source.documents == len(texts)
    assert source.rejected == {reason: 1 for _, reason in bad.values()}
    found = {(r["row"], r["reason"]) for r in rejects(tmp_path / "tokens")}
    assert found == {(row, reason) for row, (_, reason) in bad.items()}
    assert {Path(r["file"]).name for r in rejects(tmp_path / "tokens")} == {"reviews.jsonl"}

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokens = SourceTokens(tmp_path / "tokens", "reviews", verify=True)
    assert [tokens.document(i).tolist() for i in (0, 9, 10, len(texts) - 1)] == [
        tokenizer(texts[i], add_special_tokens=True)["input_ids"] for i in (0, 9, 10, len(texts) - 1)
    ]


def test_a_parquet_file_without_the_text_column(tokenizer_dir, texts, tmp_path, capsys):
    """One file of two lacks the column: its rows are rejected as missing the field, the other file's rows are
    tokenized; when no file has it, the command stops in one line naming the source and the reason."""
    good, bad = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": texts[:50]}), good)
    pq.write_table(pa.table({"body": texts[50:60]}), bad)
    assert tokenize(tokenizer_dir, tmp_path / "tokens", f"p={tmp_path}/*.parquet") == 0
    source = ShardsManifest.load(tmp_path / "tokens").sources["p"]
    assert source.documents == 50 and source.rejected == {"missing_field:text": 10}

    capsys.readouterr()
    assert tokenize(tokenizer_dir, tmp_path / "only-bad", f"p={bad}") == 2
    error = one_line(capsys)
    assert "source 'p': no document to tokenize" in error and "10 missing_field:text" in error


# ---- damaged token shards ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tokenizer_dir, texts, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    (root / "reviews.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert tokenize(tokenizer_dir, root / "tokens", f"ecom={root / 'reviews.jsonl'}") == 0
    return root / "tokens"


def flip_byte(path: Path, offset: int) -> None:
    """Change one byte, the file's size unchanged (what a bad disk sector or a bit flip does)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("suffix", [".ds", ".ds.index"])
def test_a_flipped_byte_in_a_shard_is_refused_naming_file_and_bytes(shards, tmp_path, suffix):
    damaged = tmp_path / "tokens"
    shutil.copytree(shards, damaged)
    path = next(damaged.glob(f"ecom/*{suffix}"))
    flip_byte(path, path.stat().st_size // 2 - 1)
    tokens = SourceTokens(damaged, "ecom")  # opening reads sizes only: the damage is found on reading
    with pytest.raises(
        DataError, match=rf"{path.name}: damaged at bytes 0-{path.stat().st_size - 1:,} \(block 0"
    ):
        tokens.tokens(0, tokens.num_tokens) if suffix == ".ds" else tokens.boundaries(0, tokens.num_tokens)
    with pytest.raises(DataError, match=rf"{path.name}: damaged at bytes"):
        SourceTokens(damaged, "ecom", verify=True)


def test_only_the_blocks_read_are_checked_once_each(tmp_path):
    """Block checks at a block size the test can see: reading block 0 passes with block 3 damaged, reading
    into block 3 fails naming its byte range, and a verified block is not hashed again."""
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 2)  # 512 bytes: 8 blocks of 64
    digests = block_digests(path, 64)
    flip_byte(path, 3 * 64 + 5)
    checks = BlockChecks(path, np.memmap(path, dtype=np.uint8, mode="r"), digests, 64)
    checks.check(0, 64)
    checks.check(64, 3 * 64)
    assert checks.verified == {0, 1, 2}
    with pytest.raises(DataError, match=r"data.bin: damaged at bytes 192-255 \(block 3"):
        checks.check(150, 200)
    with pytest.raises(DataError, match=r"block checksums recorded for 8 blocks"):
        BlockChecks(path, np.memmap(path, dtype=np.uint8, mode="r"), digests[:-1], 64)


def test_an_old_shard_with_ids_beyond_the_vocabulary(shards, tmp_path):
    """Shards of format 1 carry no checksums: an id the tokenizer does not have is still refused, naming the
    file and the bytes, rather than indexing past the embedding table."""
    old = tmp_path / "tokens"
    shutil.copytree(shards, old)
    manifest = json.loads((old / MANIFEST_FILENAME).read_text())
    manifest["format"] = "rexbert-token-shards/1"
    for shard in manifest["sources"]["ecom"]["shards"]:
        shard.pop("checksums")
    (old / MANIFEST_FILENAME).write_text(json.dumps(manifest))
    path = next(old.glob("ecom/*.ds"))
    data = bytearray(path.read_bytes())
    data[40:42] = (60000).to_bytes(2, "little")  # token 20
    path.write_bytes(bytes(data))

    tokens = SourceTokens(old, "ecom")
    assert tokens.tokens(0, 20).max() < tokens.vocab_size
    with pytest.raises(
        DataError, match=rf"{path.name}: token id 60000 at bytes 40-41 is beyond the vocabulary"
    ):
        tokens.tokens(0, 21)


def test_pretraining_on_a_damaged_shard_stops_in_one_line(shards, tmp_path, capsys):
    damaged = tmp_path / "tokens"
    shutil.copytree(shards, damaged)
    path = next(damaged.glob("ecom/*.ds"))
    flip_byte(path, 100)
    recipe = [
        "--recipe", "tiny", "--shards", str(damaged), "--set", "lexicon.max_docs=50",
        "--set", "phases.general.steps=4", "--output", str(tmp_path / "run"), "--phase", "general",
    ]  # fmt: skip
    assert rexbert(["pretrain", *recipe]) == 2
    error = one_line(capsys)
    assert f"{path.name}: damaged at bytes" in error
    assert (tmp_path / "run" / "recipe.yaml").is_file()  # found while reading, after the run started

    capsys.readouterr()
    assert rexbert(["pretrain", *recipe, "--output", str(tmp_path / "verified"), "--verify"]) == 2
    assert f"{path.name}: damaged at bytes" in one_line(capsys)
    assert not (tmp_path / "verified").exists()  # --verify: found before anything is written
