"""What a suite is to the runner: a small protocol, so a new suite is one module and one registry line.

A suite module keeps its work in plain functions (`run`, and whatever helpers it needs) and exposes one
class implementing `Suite`: its name, the `--data` keys that feed it, its default budget, the type of its
own options (a dataclass, `NoOptions` when it has none) and `run(model_path, data, budget, options)`.
`eval_suites.runner.SUITES` lists one instance of each; the run config's `eval.options.<suite>` and the
evaluation command build the options from the suite's own type, so no suite is special-cased anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from eval_suites.common import Budget, SuiteResult

__all__ = ["NoOptions", "Suite"]


@dataclass(frozen=True)
class NoOptions:
    """The options of a suite that has none."""


@runtime_checkable
class Suite(Protocol):
    name: str  # the suite's name in configs, commands and results.json
    data_keys: tuple[str, ...]  # the --data keys that feed it, in order of preference
    default_budget: Budget  # small enough for a CPU run
    options: type  # its settings dataclass (built from `eval.options.<name>`), `NoOptions` when none

    def run(self, model_path: str, data: Sequence[str], budget: Budget, options: Any) -> SuiteResult:
        """Score the checkpoint at `model_path` on `data` within `budget`."""
        ...
