"""From a recipe's `sources`, `tokenizer` and `lexicon` sections to datasets, a tokenizer and a
saliency lexicon. Loading goes through `datasets.load_dataset` (local files, Hub datasets, map-style
or streaming); the generated sample corpus (the `sample_corpus` package) serves offline demos."""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import datasets
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from rexbert_core.token_shards import SourceTokens, tokenizer_fingerprint
from rexbert_core.typed_config import ConfigError, DataError

from .packing import PackedRows, PackedSource, StreamingPackedSource
from .recipes import LexiconSpec, Recipe, SourceSpec, TokenizerSpec
from .saliency import SaliencyLexicon, build_saliency_lexicon
from .token_rows import ShardedRows
from .validation import held_out_indices, split_documents

__all__ = ["RecipeData", "load_lexicon", "load_source", "load_tokenizer", "progress_bars_wanted"]

logger = logging.getLogger(__name__)

_BUILDER_BY_SUFFIX = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv", ".txt": "text"}


def _builder_for(data_files: str | list[str]) -> str:
    first = data_files if isinstance(data_files, str) else data_files[0]
    suffixes = [s for s in Path(first).suffixes if s != ".gz"]
    builder = _BUILDER_BY_SUFFIX.get(suffixes[-1] if suffixes else "")
    if builder is None:
        raise ConfigError(f"cannot tell the file format of {first!r}; use parquet, json(l), csv or txt files")
    return builder


def outside_outputs(name: str, data_files: str | list[str], outputs: Path | None) -> str | list[str]:
    """The files local `data_files` patterns match (as `datasets` resolves them), less those inside the
    pretraining's own output directory: a glob such as `runs/**/*.jsonl` would otherwise read the run's own
    `train_log.jsonl`, and read more of it on every resume. Patterns of remote files are kept as they are."""
    patterns = [data_files] if isinstance(data_files, str) else list(data_files)
    if outputs is None or any("://" in pattern for pattern in patterns):
        return data_files
    from datasets.data_files import resolve_pattern

    outputs = Path(outputs).resolve()
    files, left_out = [], []
    for pattern in patterns:
        try:
            matched = resolve_pattern(pattern, base_path=".")
        except FileNotFoundError:
            raise DataError(f"sources.{name}: no file matches {pattern!r}") from None
        for file in matched:
            (left_out if Path(file).resolve().is_relative_to(outputs) else files).append(file)
    if left_out:
        logger.warning(
            "sources.%s: left out %d file(s) of the output directory %s", name, len(left_out), outputs
        )
    if not files:
        raise DataError(
            f"sources.{name}: {data_files!r} matches only files of the output directory {outputs}"
        )
    return files


def load_source(name: str, spec: SourceSpec, seed: int = 0, outputs: Path | None = None):
    """The documents of one source as a `datasets.Dataset` (or `IterableDataset` when streaming),
    filtered by `where` and cut to `max_docs`; local files inside `outputs` are never read
    (`outside_outputs`)."""
    if spec.sample_corpus is not None:
        from rexbert_core.sample_corpus import SOURCES, sample_documents

        unknown = sorted(set(spec.sample_corpus) - set(SOURCES))
        if unknown:
            raise ConfigError(
                f"sources.{name}.sample_corpus: unknown sample sources {unknown}; choose from {SOURCES}"
            )
        docs = [doc for doc in sample_documents(seed=seed) if doc["source"] in spec.sample_corpus]
        dataset = datasets.Dataset.from_list(docs)
        if spec.streaming:
            dataset = dataset.to_iterable_dataset()
    else:
        try:
            if spec.data_files is not None:
                dataset = datasets.load_dataset(
                    _builder_for(spec.data_files),
                    data_files=outside_outputs(name, spec.data_files, outputs),
                    split=spec.split,
                    streaming=spec.streaming,
                )
            else:
                dataset = datasets.load_dataset(
                    spec.dataset, spec.dataset_config, split=spec.split, streaming=spec.streaming
                )
        except StopIteration:  # what `datasets` raises for a json file without a single record
            raise DataError(f"sources.{name}: {spec.data_files or spec.dataset!r} holds no records") from None
        except Exception as error:  # the loader boundary: whatever `datasets` raises, name the source
            raise DataError(
                f"sources.{name}: could not load {spec.data_files or spec.dataset!r}: {type(error).__name__}: {error}"
            ) from error
        if not spec.streaming and len(dataset) == 0:
            raise DataError(f"sources.{name}: {spec.data_files or spec.dataset!r} holds no records")
    columns = dataset.column_names
    for column in [spec.text_column, *(spec.where or {})]:
        if columns is not None and column not in columns:
            raise DataError(f"sources.{name}: no column {column!r}; the data has {columns}")
    if spec.where:
        conditions = {column: set(values) for column, values in spec.where.items()}
        dataset = dataset.filter(
            lambda batch: [
                all(batch[c][i] in ok for c, ok in conditions.items())
                for i in range(len(batch[spec.text_column]))
            ],
            batched=True,
        )
    if spec.max_docs is not None:
        dataset = (
            dataset.take(spec.max_docs)
            if spec.streaming
            else dataset.select(range(min(spec.max_docs, len(dataset))))
        )
    return dataset


def _hold_out_streaming(dataset, count: int, text_column: str) -> tuple:
    """(training stream, held-out documents) of a streaming source: the first `count` documents are held
    out, and the training stream drops every document with one of their texts. A filter, not `skip(count)`:
    once the stream is split between processes and workers, `datasets` divides a skip among them, and the
    held-out documents of the first file would be trained on."""
    held_out = dataset.take(count)
    texts = {document.get(text_column) for document in held_out}
    return dataset.filter(lambda document: document.get(text_column) not in texts), held_out


class RecipeData:
    """Loads each source once and hands out its texts and packed rows (per sequence length). With a
    recipe `validation` section, each source's held-out documents are split off first (`trainers.validation`:
    a seeded draw; the first documents of a streaming source) and only `validation_packed` sees them."""

    def __init__(self, recipe: Recipe, outputs: Path | None = None):
        self.recipe, self.outputs = recipe, outputs  # outputs: the pretraining's directory, never read
        self._datasets: dict[str, tuple] = {}

    def _split(self, name: str) -> tuple:
        if name not in self._datasets and self.recipe.sources[name].shards is not None:
            self._datasets[name] = self._split_shards(name)
        if name not in self._datasets:
            spec = self.recipe.sources[name]
            dataset = load_source(name, spec, seed=self.recipe.seed, outputs=self.outputs)
            validation = None
            if self.recipe.validation is not None:
                count = self.recipe.validation.documents_per_source
                if spec.streaming:
                    dataset, validation = _hold_out_streaming(dataset, count, spec.text_column)
                else:
                    if len(dataset) <= count:
                        raise DataError(
                            f"sources.{name}: {len(dataset)} documents cannot spare "
                            f"validation.documents_per_source={count} for validation"
                        )
                    dataset, validation = split_documents(dataset, count, seed=self.recipe.seed)
            self._datasets[name] = (dataset, validation)
        return self._datasets[name]

    def _split_shards(self, name: str) -> tuple:
        """(the source's tokens, the held-out document indices or None) of a `shards` source. The same
        seeded draw as for texts, over the documents the shards hold (blank texts were dropped)."""
        spec = self.recipe.sources[name]
        tokens = SourceTokens(spec.shards, spec.shards_source or name)
        documents = (
            tokens.num_documents if spec.max_docs is None else min(spec.max_docs, tokens.num_documents)
        )
        held_out = None
        if self.recipe.validation is not None:
            count = self.recipe.validation.documents_per_source
            if documents <= count:
                raise DataError(
                    f"sources.{name}: {documents} documents cannot spare "
                    f"validation.documents_per_source={count} for validation"
                )
            held_out = held_out_indices(count, documents, seed=self.recipe.seed)
        return tokens, held_out

    def dataset(self, name: str):
        """The documents of a source that training may see."""
        return self._split(name)[0]

    def validation_packed(self, name: str, tokenizer, seq_len: int) -> PackedRows:
        """The held-out documents of a source, packed at `seq_len` in their order (short tail kept)."""
        source, held_out = self._split(name)
        if self.recipe.sources[name].shards is not None:
            self._check_tokenizer(name, tokenizer)
            documents = (source.document(int(i)) for i in held_out)
            return PackedRows.from_token_ids(name, documents, seq_len, keep_tail=True, shuffle=False)
        column = self.recipe.sources[name].text_column
        texts = [row[column] for row in held_out]
        return PackedRows.from_texts(name, texts, tokenizer, seq_len, keep_tail=True, shuffle=False)

    def texts(self, name: str, limit: int | None = None, tokenizer=None) -> Iterator[str]:
        """Up to `limit` non-empty texts of a source, in order (of a `shards` source: its documents decoded
        with `tokenizer`, special tokens left out)."""
        if self.recipe.sources[name].shards is not None:
            if tokenizer is None:
                raise ConfigError(
                    f"sources.{name}: shards hold token ids; the tokenizer must be given, not trained"
                )
            source, held_out = self._split(name)
            skip = set() if held_out is None else set(held_out.tolist())
            indices = (i for i in range(source.num_documents) if i not in skip)
            decoded = (tokenizer.decode(source.document(i), skip_special_tokens=True) for i in indices)
            return itertools.islice(decoded, limit)
        column = self.recipe.sources[name].text_column
        texts = (row[column] for row in self.dataset(name))
        texts = (t for t in texts if isinstance(t, str) and t.strip())
        return itertools.islice(texts, limit)

    def _check_tokenizer(self, name: str, tokenizer) -> None:
        """Shards made with another tokenizer are refused (one line naming the directory)."""
        source = self._split(name)[0]
        SourceTokens(source.directory, source.name, fingerprint=tokenizer_fingerprint(tokenizer))

    def packed(self, name: str, tokenizer, seq_len: int) -> PackedSource:
        spec = self.recipe.sources[name]
        if spec.shards is not None:
            self._check_tokenizer(name, tokenizer)
            tokens, held_out = self._split(name)
            return ShardedRows(
                name, tokens, seq_len, shuffle=spec.shuffle, held_out=held_out, max_docs=spec.max_docs
            )
        dataset = self.dataset(name)
        if spec.streaming:
            return StreamingPackedSource(name, dataset, tokenizer, seq_len, text_column=spec.text_column)
        return PackedRows.from_dataset(
            name, dataset, tokenizer, seq_len, text_column=spec.text_column, shuffle=spec.shuffle
        )


def load_tokenizer(spec: TokenizerSpec, data: RecipeData) -> PreTrainedTokenizerBase:
    """Train a small BPE on the sources (round-robin over them), build a ModernBERT-style tokenizer
    from an OLMo `tokenizer.json`, or load a tokenizer directory / Hub id."""
    from modeling_rexbert.tokenization import build_modernbert_tokenizer, train_bpe_tokenizer

    if spec.train_vocab_size is not None:
        per_source = [data.texts(name, spec.train_max_docs) for name in data.recipe.sources]
        texts = [t for group in itertools.zip_longest(*per_source) for t in group if t is not None]
        return train_bpe_tokenizer(
            texts, vocab_size=spec.train_vocab_size, show_progress=progress_bars_wanted()
        )
    if spec.path.endswith(".json") and Path(spec.path).is_file():
        return build_modernbert_tokenizer(spec.path)
    return AutoTokenizer.from_pretrained(spec.path)


def progress_bars_wanted() -> bool:
    """Whether to show a progress bar that does not go through tqdm (the tokenizers library's own): when
    transformers' bars are on, tqdm's are not switched off, and stderr is a terminal."""
    from transformers.utils import logging as hf_logging

    return hf_logging.is_progress_bar_enabled() and not os.environ.get("TQDM_DISABLE") and sys.stderr.isatty()


def load_lexicon(spec: LexiconSpec, data: RecipeData, tokenizer) -> SaliencyLexicon:
    """Load the lexicon at `spec.path`, or build it from the domain and general sources."""
    if spec.path is not None:
        return SaliencyLexicon.load(spec.path, tokenizer)

    def texts(names: list[str]) -> Iterator[str]:
        return itertools.chain.from_iterable(data.texts(name, spec.max_docs, tokenizer) for name in names)

    lexicon = build_saliency_lexicon(
        texts(spec.domain),
        texts(spec.general),
        tokenizer,
        smoothing=spec.smoothing,
        min_count=spec.min_count,
        max_tokens=spec.max_tokens,
        words_only=spec.words_only,
    )
    lexicon.settings.update({"domain_sources": spec.domain, "general_sources": spec.general})
    top = ", ".join(token for token, _ in lexicon.top(8))
    logger.info("saliency lexicon: %d tokens, most salient: %s", len(lexicon.scores), top)
    return lexicon
