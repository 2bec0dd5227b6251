"""Top-k accuracy of masked-token predictions.

Each prediction is the model's ranked list of token ids for one masked position (best first);
the reference is the original token id. `top_k` accuracy is the share of positions whose original
token appears among the first k predicted ids.
"""

import datasets
import evaluate
import numpy as np

__all__ = ["MaskedTokenAccuracy"]

_DESCRIPTION = "Share of masked positions whose original token is among the model's top-k predictions."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of int): ranked predicted token ids per masked position, best first.
    references (list of int): the original token id per masked position.
    top_k (list of int): the k values to report, default [1, 3, 5]. Every ranked list must hold at
        least max(top_k) ids.
Returns:
    dict with `top{k}_accuracy` for every k.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MaskedTokenAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Value("int64"),
                }
            ),
        )

    def _compute(self, predictions, references, top_k=(1, 3, 5)):
        if len(references) == 0:
            raise ValueError("masked_token_accuracy needs at least one masked position")
        ranked = np.asarray(predictions)
        if ranked.ndim != 2 or ranked.shape[1] < max(top_k):
            raise ValueError(
                f"every prediction must rank at least {max(top_k)} token ids, got shape {ranked.shape}"
            )
        hits = ranked == np.asarray(references)[:, None]
        return {f"top{k}_accuracy": float(hits[:, :k].any(axis=1).mean()) for k in top_k}
