"""The curation pipeline steps: datatrove `PipelineStep`s, one per file, with explicit keyword arguments.

In pipeline order: `DomainPreselectFilter`, `QualityFilter` (or `DatatroveQualityFilter`),
`EcomClassifierFilter`, `LanguageFilter`, `PIIScrubber`, then the dedup filters. Each counts its input,
output, drop reasons and tokens the same way (`counting.py`); the corpus report is derived from those
statistics, so a new stage needs only its file and a line in `curation.pipeline.PipelineBuilder`.
"""

from .counting import MODEL_BATCH_SIZE, CountingFilter, stage_step_name
from .dedup import (
    CountedExactDedupFilter,
    CountedMinhashDedupFilter,
    WhitespaceMinhashSignature,
    exact_dedup_key,
)
from .domain_preselect import DomainPreselectFilter
from .ecom_classifier import EcomClassifierFilter
from .language import LanguageFilter, bundled_lid_model
from .pii import PIIScrubber
from .quality import DATATROVE_FILTERS, DatatroveQualityFilter, QualityFilter

__all__ = [
    "DATATROVE_FILTERS",
    "MODEL_BATCH_SIZE",
    "CountedExactDedupFilter",
    "CountedMinhashDedupFilter",
    "CountingFilter",
    "DatatroveQualityFilter",
    "DomainPreselectFilter",
    "EcomClassifierFilter",
    "LanguageFilter",
    "PIIScrubber",
    "QualityFilter",
    "WhitespaceMinhashSignature",
    "bundled_lid_model",
    "exact_dedup_key",
    "stage_step_name",
]
