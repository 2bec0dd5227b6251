"""Entity-level precision, recall and F1 over BIO tag sequences (seqeval, CoNLL rules)."""

import datasets
import evaluate
from seqeval.metrics import accuracy_score, classification_report

__all__ = ["EntityF1"]

_DESCRIPTION = "Entity-level precision/recall/F1 (micro over entities) with per-type F1, via seqeval."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of str): predicted BIO tags per sentence.
    references (list of list of str): gold BIO tags per sentence, same lengths.
Returns:
    dict with `precision`, `recall`, `f1` (micro over entities), `accuracy` (per tag) and
    `<Type>_f1` for every entity type seen in the references or predictions.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class EntityF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        for predicted, gold in zip(predictions, references):
            if len(predicted) != len(gold):
                raise ValueError(f"tag sequences differ in length: {len(predicted)} vs {len(gold)}")
        report = classification_report(references, predictions, output_dict=True, zero_division=0)
        scores = {
            "precision": float(report["micro avg"]["precision"]),
            "recall": float(report["micro avg"]["recall"]),
            "f1": float(report["micro avg"]["f1-score"]),
            "accuracy": float(accuracy_score(references, predictions)),
        }
        for entity_type, row in report.items():
            if not entity_type.endswith(" avg"):
                scores[f"{entity_type}_f1"] = float(row["f1-score"])
        return scores
