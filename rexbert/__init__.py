"""RexBERT: the `rexbert` command and the end-to-end pipeline.

This is the top floor of the project. It drives the libraries below it, each of which knows nothing of
the others: `curation` (the corpus), `trainers` (pretraining), `eval_suites` (benchmarks), `hub_cards`
(cards and publishing), all on the model package `modeling_rexbert` and the ground-floor packages
`typed_config` (configs and error types) and `sample_corpus` (generated demo data).

    rexbert.cli        the command line: subcommands, one error boundary, verbosity
    rexbert.pipeline   `rexbert run`: run config, output layout, one function per stage, report, resume
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rexbert")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
