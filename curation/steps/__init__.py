"""The curation pipeline steps: datatrove `PipelineStep`s, one per file, with explicit keyword arguments.

In pipeline order: `DomainPreselectFilter`, `QualityFilter` (or `DatatroveQualityFilter`),
`EcomClassifierFilter`, `LanguageFilter`, `PIIScrubber`, then the dedup filters. Each file also holds its
stage's settings (a `FilterStage` dataclass with every default, which builds the step; `stage.py`). Each step
counts its input, output, drop reasons and tokens the same way (`counting.py`); the corpus report is derived
from those statistics. A new filter stage is its step file plus one field of `curation.config.StagesConfig`.
"""

from .counting import MODEL_BATCH_SIZE, CountingFilter, stage_step_name
from .dedup import (
    CountedExactDedupFilter,
    CountedMinhashDedupFilter,
    ExactDedupConfig,
    MinhashConfig,
    WhitespaceMinhashSignature,
    document_id_key,
    exact_dedup_key,
)
from .domain_preselect import DomainPreselectConfig, DomainPreselectFilter
from .ecom_classifier import ClassifierConfig, EcomClassifierFilter
from .language import LanguageConfig, LanguageFilter, bundled_lid_model
from .pii import PIIConfig, PIIScrubber
from .quality import DATATROVE_FILTERS, DatatroveQualityFilter, QualityConfig, QualityFilter
from .stage import FilterStage, StepContext

__all__ = [
    "DATATROVE_FILTERS",
    "MODEL_BATCH_SIZE",
    "ClassifierConfig",
    "CountedExactDedupFilter",
    "CountedMinhashDedupFilter",
    "CountingFilter",
    "DatatroveQualityFilter",
    "DomainPreselectConfig",
    "DomainPreselectFilter",
    "EcomClassifierFilter",
    "ExactDedupConfig",
    "FilterStage",
    "LanguageConfig",
    "LanguageFilter",
    "MinhashConfig",
    "PIIConfig",
    "PIIScrubber",
    "QualityConfig",
    "QualityFilter",
    "StepContext",
    "WhitespaceMinhashSignature",
    "bundled_lid_model",
    "document_id_key",
    "exact_dedup_key",
    "stage_step_name",
]
