"""The ground floor of RexBERT: what every other package builds on, under one project-owned name.

    typed_config   typed configs from mappings (did-you-mean, type checks, one path rule), the error types
    safe_outputs   outputs that survive kills, concurrent commands and damaged files
    token_shards   tokenized corpora on disk, memory-mapped
    sample_corpus  the embedded default data: generated shopping listings, reviews and prose
    tables         Markdown tables, the readable form of every report and result

Nothing here imports another project package; `typed_config` and `sample_corpus` import nothing of the
project at all, the other two only `typed_config` (its error types).
"""

__all__: list[str] = []
