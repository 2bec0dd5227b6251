"""Markdown tables: the readable form of every report and result this project writes (run report, corpus
report, evaluation results, bench tables), next to their JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["markdown_table"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; `align` gives one letter per column, `l` or `r` (right: numbers), default left."""
    align = align.ljust(len(header), "l")
    rule = "|" + "".join("---:|" if side == "r" else "---|" for side in align[: len(header)])
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
