"""Pearson and Spearman correlation between predicted scores and gold scores."""

import datasets
import evaluate
import numpy as np
from scipy import stats

__all__ = ["Correlation"]

_DESCRIPTION = "Pearson and Spearman correlation between predicted and gold scores."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted scores (e.g. cosine similarities).
    references (list of float): gold scores (e.g. graded relevance).
Returns:
    dict with `pearson` and `spearman`; both are 0.0 when either side is constant (undefined).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Correlation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        predicted = np.asarray(predictions, dtype=np.float64)
        gold = np.asarray(references, dtype=np.float64)
        if len(gold) < 2:
            raise ValueError("correlation needs at least two (prediction, reference) pairs")
        if np.ptp(predicted) == 0 or np.ptp(gold) == 0:
            return {"pearson": 0.0, "spearman": 0.0}
        return {
            "pearson": float(stats.pearsonr(predicted, gold)[0]),
            "spearman": float(stats.spearmanr(predicted, gold)[0]),
        }
