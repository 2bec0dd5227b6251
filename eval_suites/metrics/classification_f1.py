"""Accuracy with micro and macro F1 for single-label classification (e.g. ESCI E/S/C/I)."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, f1_score

__all__ = ["ClassificationF1"]

_DESCRIPTION = "Accuracy, micro-F1 and macro-F1 over integer class ids."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): gold class ids.
    labels (list of int, optional): the class ids macro-F1 averages over; default: those present in
        predictions or references. Pass every class so absent classes count as 0 F1.
Returns:
    dict with `accuracy`, `micro_f1` and `macro_f1`.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassificationF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, labels=None):
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "micro_f1": float(
                f1_score(references, predictions, labels=labels, average="micro", zero_division=0)
            ),
            "macro_f1": float(
                f1_score(references, predictions, labels=labels, average="macro", zero_division=0)
            ),
        }
