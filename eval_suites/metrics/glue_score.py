"""The standard GLUE metric of every task, chosen by config name.

cola: Matthews correlation; sst2, mnli, qnli, rte, wnli: accuracy; mrpc, qqp: accuracy and F1 of
the positive class; stsb: Pearson and Spearman correlation. This is a local stand-in for the Hub's
`glue` metric, which `evaluate.load("glue", task)` cannot fetch offline.
"""

import datasets
import evaluate
import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

__all__ = ["ACCURACY_TASKS", "F1_TASKS", "TASKS", "GlueScore"]

_DESCRIPTION = "Standard GLUE metric(s) of one task, selected by the config name."

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids (int), or scores (float) for stsb.
    references: gold class ids (int), or gold scores (float) for stsb.
Returns:
    cola: matthews_correlation; sst2/mnli/qnli/rte/wnli: accuracy; mrpc/qqp: accuracy, f1;
    stsb: pearson, spearman.
"""

ACCURACY_TASKS = ("sst2", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli")
F1_TASKS = ("mrpc", "qqp")
TASKS = ("cola", "stsb") + ACCURACY_TASKS + F1_TASKS


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GlueScore(evaluate.Metric):
    def _info(self):
        if self.config_name not in TASKS:
            raise KeyError(f"unknown GLUE task {self.config_name!r}; expected one of {list(TASKS)}")
        value_type = "float64" if self.config_name == "stsb" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value(value_type), "references": datasets.Value(value_type)}
            ),
        )

    def _compute(self, predictions, references):
        task = self.config_name
        if task == "cola":
            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        if task == "stsb":
            predicted = np.asarray(predictions, dtype=np.float64)
            gold = np.asarray(references, dtype=np.float64)
            if np.ptp(predicted) == 0 or np.ptp(gold) == 0:
                return {"pearson": 0.0, "spearman": 0.0}
            return {
                "pearson": float(stats.pearsonr(predicted, gold)[0]),
                "spearman": float(stats.spearmanr(predicted, gold)[0]),
            }
        scores = {"accuracy": float(accuracy_score(references, predictions))}
        if task in F1_TASKS:
            scores["f1"] = float(f1_score(references, predictions, zero_division=0))
        return scores
