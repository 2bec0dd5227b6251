"""Ecom-niverse curation: turn general web text into an e-commerce domain corpus on datatrove.

`rexbert curate run --config <yaml>` reads jsonl / parquet / FineFineWeb-style / `datasets` sources,
rejects unusable records into a rejects file, pre-selects source domains, scores documents (and
optionally lines) with a fastText e-commerce classifier trained by `rexbert curate train-classifier`,
applies quality and language filters, scrubs PII, removes exact and MinHash near duplicates, and writes
``<out>/corpus/*.parquet`` (id, text, source, domain, ...) plus ``<out>/report/report.json`` / ``.md`` /
PNG plots. Modules: `config` (the typed YAML schema), `layout` (the output folders), `readers`, `steps`
(one datatrove step per file), `classifier` (training and scoring the fastText model), `pipeline` (the
step lists), `executors` (local, Slurm or Ray), `report`, `pool` (labelled pool from the shared data),
`cli`, and `tokenize` (`rexbert tokenize`: a corpus into token shards; its config, steps, runner and command
line). Like every library here it imports no sibling package; it builds on `rexbert_core`.
"""

__all__ = []
