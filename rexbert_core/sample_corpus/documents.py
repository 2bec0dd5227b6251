"""The sample corpus on disk: one jsonl file per source plus `sources.json`, the manifest that says
what each file holds, and labelled examples for the e-commerce classifier."""

from __future__ import annotations

import json
import random
from pathlib import Path

from .generate import MAKERS, make_general, make_listing, make_review

__all__ = [
    "DOCS_PER_SOURCE",
    "DOMAIN_OF_SOURCE",
    "MANIFEST_FILENAME",
    "SOURCES",
    "classifier_examples",
    "corpus_manifest",
    "read_manifest",
    "sample_documents",
    "write_classifier_examples",
    "write_jsonl",
    "write_sample_corpus",
]

SOURCES = ("listing", "review", "general")
DOCS_PER_SOURCE = {"listing": 180, "review": 130, "general": 160}
DOMAIN_OF_SOURCE = {"listing": "ecommerce", "review": "ecommerce", "general": "general"}
MANIFEST_FILENAME = "sources.json"


def sample_documents(seed: int = 0, docs_per_source: dict[str, int] | None = None) -> list[dict]:
    """The embedded corpus: a few hundred documents, identical for the same seed.

    Returns dicts with keys ``id`` (e.g. ``"listing-00042"``), ``text``, ``source`` (listing/review/
    general), ``domain`` (ecommerce/general) and ``category`` (shopping category or general topic).
    """
    counts = docs_per_source or DOCS_PER_SOURCE
    rng = random.Random(seed)
    documents = []
    for source in SOURCES:
        for index in range(counts.get(source, 0)):
            text, category = MAKERS[source](rng)
            documents.append(
                {
                    "id": f"{source}-{index:05d}",
                    "text": text,
                    "source": source,
                    "domain": DOMAIN_OF_SOURCE[source],
                    "category": category,
                }
            )
    return documents


def write_sample_corpus(out_dir: str | Path, seed: int = 0) -> list[Path]:
    """Write `sample_documents(seed)` as one jsonl file per source (`<source>.jsonl`) and the manifest
    `sources.json` (each file's source name, format and domain, for readers that do not know this
    package); returns the jsonl paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = sample_documents(seed)
    paths = []
    for source in SOURCES:
        path = out_dir / f"{source}.jsonl"
        write_jsonl(path, [d for d in documents if d["source"] == source])
        paths.append(path)
    manifest = [{**entry, "path": Path(entry["path"]).name} for entry in corpus_manifest(out_dir)]
    (out_dir / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return paths


def corpus_manifest(corpus_dir: str | Path) -> list[dict]:
    """What `write_sample_corpus(corpus_dir)` writes: `{name, path, format, domain}` per source file."""
    return [
        {
            "name": source,
            "path": str(Path(corpus_dir) / f"{source}.jsonl"),
            "format": "jsonl",
            "domain": DOMAIN_OF_SOURCE[source],
        }
        for source in SOURCES
    ]


def read_manifest(corpus_dir: str | Path) -> list[dict]:
    """The sources a written sample corpus holds, from its `sources.json`: `{name, path, format, domain}`."""
    corpus_dir = Path(corpus_dir)
    manifest = json.loads((corpus_dir / MANIFEST_FILENAME).read_text(encoding="utf-8"))
    return [{**entry, "path": str(corpus_dir / entry["path"])} for entry in manifest]


# ---------------------------------------------------------------------------------------------------
# Labelled examples for the e-commerce classifier
# ---------------------------------------------------------------------------------------------------


def _snippet(rng: random.Random, text: str) -> str:
    """A short piece of a document: one to three of its sentences or lines."""
    pieces = [p.strip() for p in text.replace("\n", ". ").split(". ") if len(p.split()) >= 3]
    start = rng.randrange(len(pieces))
    return ". ".join(pieces[start : start + rng.randint(1, 3)])


def classifier_examples(seed: int = 1, n_per_label: int = 300) -> list[dict]:
    """Labelled examples ``{"text", "label"}`` with label ``"ecommerce"`` or ``"general"``.

    Half of each label are whole documents, half short snippets (a title, a bullet, one review line,
    one news sentence), and a third of the general side is economy news and everyday errands, whose
    vocabulary (prices, sales, shops) overlaps with shopping text. Uses a different seed than the corpus
    by default so a classifier is not scored on the documents it will filter.
    """
    rng = random.Random(seed)
    examples = []
    for i in range(n_per_label):
        text = (make_listing if i % 2 else make_review)(rng)[0]
        examples.append({"text": text if i % 4 < 2 else _snippet(rng, text), "label": "ecommerce"})
    hard_topics = ["economy_news", "everyday"]
    for i in range(n_per_label):
        text = make_general(rng, rng.choice(hard_topics) if i % 3 == 0 else None)[0]
        examples.append({"text": text if i % 4 < 2 else _snippet(rng, text), "label": "general"})
    rng.shuffle(examples)
    return examples


def write_classifier_examples(path: str | Path, seed: int = 1, n_per_label: int = 300) -> Path:
    """Write `classifier_examples` as jsonl (``{"text", "label"}`` per line); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, classifier_examples(seed, n_per_label))
    return path


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """One JSON object per line, UTF-8."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
