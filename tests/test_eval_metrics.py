"""The local evaluate metric modules against scipy / sklearn / seqeval, chance levels, bad input."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402
from seqeval.metrics import f1_score as seqeval_f1  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef  # noqa: E402

from eval_suites.metrics import compute_metric, load_metric, metric_path  # noqa: E402

RNG = np.random.default_rng(0)


def test_metrics_load_by_path_with_evaluate():
    import evaluate

    for name in ("masked_token_accuracy", "correlation", "classification_f1", "entity_f1"):
        assert isinstance(load_metric(name), evaluate.Metric)
        assert metric_path(name).is_file() and metric_path(name).parent.joinpath("__init__.py").is_file()
    assert isinstance(load_metric("glue_score", "cola"), evaluate.Metric)


def test_topk_accuracy_matches_a_direct_count():
    ranked = RNG.integers(0, 20, size=(300, 5))
    references = RNG.integers(0, 20, size=300)
    scores = compute_metric("masked_token_accuracy", ranked.tolist(), references.tolist(), top_k=[1, 3, 5])
    for k in (1, 3, 5):
        expected = np.mean([references[i] in ranked[i, :k] for i in range(len(references))])
        assert scores[f"top{k}_accuracy"] == pytest.approx(expected)
    assert scores["top1_accuracy"] <= scores["top3_accuracy"] <= scores["top5_accuracy"]


def test_topk_accuracy_is_at_chance_for_random_rankings():
    vocab = 1000
    references = RNG.integers(0, vocab, size=20000)
    ranked = np.stack([RNG.choice(vocab, size=5, replace=False) for _ in range(len(references))])
    scores = compute_metric("masked_token_accuracy", ranked.tolist(), references.tolist())
    assert scores["top1_accuracy"] == pytest.approx(1 / vocab, abs=0.001)
    assert scores["top5_accuracy"] == pytest.approx(5 / vocab, abs=0.002)


def test_correlation_matches_scipy_and_is_near_zero_for_noise():
    gold = RNG.choice([0.0, 0.33, 0.66, 1.0], size=400)
    predicted = gold + RNG.normal(0, 0.5, size=400)
    scores = compute_metric("correlation", predicted.tolist(), gold.tolist())
    assert scores["spearman"] == pytest.approx(stats.spearmanr(predicted, gold)[0])
    assert scores["pearson"] == pytest.approx(stats.pearsonr(predicted, gold)[0])
    noise = compute_metric("correlation", RNG.normal(size=4000).tolist(), RNG.choice([0, 1.0], 4000).tolist())
    assert abs(noise["spearman"]) < 0.05


def test_classification_f1_matches_sklearn_and_random_is_chance():
    gold = RNG.integers(0, 4, size=2000)
    predicted = RNG.integers(0, 4, size=2000)
    scores = compute_metric("classification_f1", predicted.tolist(), gold.tolist(), labels=[0, 1, 2, 3])
    assert scores["micro_f1"] == pytest.approx(f1_score(gold, predicted, average="micro"))
    assert scores["macro_f1"] == pytest.approx(f1_score(gold, predicted, average="macro"))
    assert scores["accuracy"] == pytest.approx(0.25, abs=0.03)
    assert scores["macro_f1"] == pytest.approx(0.25, abs=0.03)


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "qnli", "rte", "stsb"])
def test_glue_score_matches_sklearn_and_scipy(task):
    if task == "stsb":
        gold = RNG.uniform(0, 5, size=300)
        predicted = gold + RNG.normal(0, 1, size=300)
        scores = compute_metric("glue_score", predicted.tolist(), gold.tolist(), config_name=task)
        assert scores == pytest.approx(
            {"pearson": stats.pearsonr(predicted, gold)[0], "spearman": stats.spearmanr(predicted, gold)[0]}
        )
        return
    gold = RNG.integers(0, 2, size=300)
    predicted = np.where(RNG.random(300) < 0.7, gold, 1 - gold)
    scores = compute_metric("glue_score", predicted.tolist(), gold.tolist(), config_name=task)
    if task == "cola":
        assert scores == pytest.approx({"matthews_correlation": matthews_corrcoef(gold, predicted)})
    elif task == "mrpc":
        assert scores == pytest.approx(
            {"accuracy": accuracy_score(gold, predicted), "f1": f1_score(gold, predicted)}
        )
    else:
        assert scores == pytest.approx({"accuracy": accuracy_score(gold, predicted)})


def test_matthews_is_zero_for_random_predictions():
    gold = RNG.integers(0, 2, size=5000)
    scores = compute_metric(
        "glue_score", RNG.integers(0, 2, size=5000).tolist(), gold.tolist(), config_name="cola"
    )
    assert abs(scores["matthews_correlation"]) < 0.05


def test_entity_f1_matches_seqeval():
    gold = [["B-Brand", "O", "B-Product", "I-Product"], ["O", "B-Component"], ["B-Brand", "I-Brand", "O"]]
    predicted = [["B-Brand", "O", "B-Product", "O"], ["O", "B-Component"], ["O", "B-Brand", "O"]]
    scores = compute_metric("entity_f1", predicted, gold)
    assert scores["f1"] == pytest.approx(seqeval_f1(gold, predicted))
    assert scores["Component_f1"] == 1.0
    assert scores["f1"] == pytest.approx(
        2 * (2 / 4) * (2 / 4) / 1.0
    )  # 2 of 4 predicted, 2 of 4 gold entities


def test_metrics_reject_bad_input():
    with pytest.raises(KeyError, match="unknown GLUE task"):
        load_metric("glue_score", "wnli2")
    with pytest.raises(KeyError, match="unknown metric"):
        load_metric("bleu")
    with pytest.raises(ValueError, match="at least 5"):
        compute_metric("masked_token_accuracy", [[1, 2]], [1])
    with pytest.raises(ValueError, match="differ in length"):
        compute_metric("entity_f1", [["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="at least two"):
        compute_metric("correlation", [0.5], [1.0])
