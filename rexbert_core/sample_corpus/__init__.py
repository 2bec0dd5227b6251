"""The embedded default data: shopping listings, product reviews and general prose, generated here.

`rexbert run` needs text on a fresh, offline machine, so the project writes its own: a deterministic
generator that fills sentence templates from small vocabularies (all written for this module; the
brands, towns and people are invented). It yields a few hundred documents in three sources:

- ``listing``: a marketplace product page (title, attribute bullets, description) with brands, sizes,
  units, colours and materials, in eight shopping categories;
- ``review``: a customer review (star rating, headline, body) of such a product;
- ``general``: history, science, local news, economy news, nature and everyday prose.

Each document is a dict ``{"id", "text", "source", "domain", "category"}`` with ``domain`` either
``"ecommerce"`` or ``"general"``. `classifier_examples` gives labelled examples for the curation
e-commerce classifier; it mixes whole documents with short snippets and shopping-flavoured general
text (economy news, errands) so the task is not separable by a single template.

Every document draws its sentences from a pool larger than it uses, in shuffled order, with numbers and
names re-drawn, so documents vary in length and wording and near-duplicate detection keeps them apart.

Modules: `vocabulary` (templates and word lists), `generate` (one document per call), `documents`
(the corpus on disk and classifier examples), `eval_sets` (ESCI, NER and sentiment sets). This package
imports nothing of the project: every other package may use it, and the pipeline reads the files it
writes (`write_sample_corpus` leaves a `sources.json` manifest next to them).
"""

from .documents import (
    DOCS_PER_SOURCE,
    DOMAIN_OF_SOURCE,
    MANIFEST_FILENAME,
    SOURCES,
    classifier_examples,
    corpus_manifest,
    read_manifest,
    sample_documents,
    write_classifier_examples,
    write_sample_corpus,
)
from .eval_sets import eval_set_paths, sample_esci, sample_ner, sample_sentiment, write_sample_eval_data

__all__ = [
    "DOCS_PER_SOURCE",
    "DOMAIN_OF_SOURCE",
    "MANIFEST_FILENAME",
    "SOURCES",
    "classifier_examples",
    "corpus_manifest",
    "eval_set_paths",
    "read_manifest",
    "sample_documents",
    "sample_esci",
    "sample_ner",
    "sample_sentiment",
    "write_classifier_examples",
    "write_sample_corpus",
    "write_sample_eval_data",
]
