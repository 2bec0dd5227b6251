"""The quality stage's bigram-repetition shortcut decides exactly as a direct bigram count does."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from datatrove.data import Document

from curation.steps import QualityFilter
from curation.steps.quality import REPETITION_WORDS
from curation.text import TokenCounter


def top_bigram_share(text: str) -> float:
    """Reference: character share of the most frequent bigram over the first REPETITION_WORDS words."""
    words = text.split()[:REPETITION_WORDS]
    (first, second), count = Counter(itertools.pairwise(words)).most_common(1)[0]
    return count * (len(first) + len(second)) / len("".join(words)) if count > 1 else 0.0


def repetitive_documents(count: int, seed: int = 0) -> list[str]:
    """Documents from small vocabularies with planted repeated phrases, so both verdicts occur."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}" * rng.randint(1, 4) for i in range(400)]
    documents = []
    for _ in range(count):
        words = rng.sample(vocabulary, rng.randint(3, 200))
        phrase = rng.sample(vocabulary, 2)
        body = [rng.choice(words) for _ in range(rng.randint(60, 700))]
        for _ in range(rng.randint(0, 120)):
            at = rng.randrange(len(body))
            body[at:at] = phrase
        documents.append(" ".join(body))
    return documents


def test_bigram_check_matches_a_direct_count():
    stage = QualityFilter(token_counter=TokenCounter())
    limit = stage.settings.max_top_bigram_char_fraction
    verdicts = Counter()
    for text in repetitive_documents(1500):
        expected = top_bigram_share(text) > limit
        tokens = text.split()
        assert stage.top_bigram_too_frequent(tokens, len("".join(tokens))) == expected, text[:80]
        verdicts[expected] += 1
    assert verdicts[True] > 100 and verdicts[False] > 100, verdicts  # both branches exercised


def test_a_repeated_phrase_is_removed_as_top_bigram():
    stage = QualityFilter(token_counter=TokenCounter())
    spam = Document(text=" ".join(["buy cheap"] * 40 + ["watches today with free shipping"] * 3), id="spam")
    prose = Document(
        text=" ".join(f"The river town {w} grew slowly around its old stone bridge." for w in range(12)),
        id="ok",
    )
    assert stage.filter(spam) == (False, "top_bigram")
    assert stage.filter(prose) is True
