"""Each suite end to end on real data with tiny models; metrics recomputed independently from the
suite's own predictions; the token suite separates a model that saw product text from one that did
not; clear errors for checkpoints or data a suite cannot use."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from eval_helpers import rexbert_available, tiny_checkpoint, train_masked_lm  # noqa: E402
from scipy import stats  # noqa: E402
from seqeval.metrics import f1_score as seqeval_f1  # noqa: E402
from sklearn.metrics import f1_score, matthews_corrcoef  # noqa: E402

from eval_suites import esci_classification, esci_similarity, esci_tokens, glue, ner  # noqa: E402
from eval_suites.common import Budget  # noqa: E402
from eval_suites.data import DataFormatError  # noqa: E402
from eval_suites.models import ModelHeadError  # noqa: E402

SMALL = Budget(max_train_examples=48, max_eval_examples=48, epochs=1, batch_size=16, max_seq_length=64)


@pytest.fixture(scope="module")
def titles(shared_data):
    return pd.read_parquet(shared_data / "ecommerce_products_vespa" / "products.parquet", columns=["title"])[
        "title"
    ].tolist()


@pytest.fixture(scope="module")
def untrained(tmp_path_factory, titles):
    return str(tiny_checkpoint(tmp_path_factory.mktemp("untrained"), titles[:2000]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, untrained, titles):
    """The same model after 40 MLM steps on other product titles of the catalog."""
    return str(train_masked_lm(untrained, tmp_path_factory.mktemp("trained"), titles[2000:4000], steps=40))


@pytest.fixture(scope="module")
def esci(shared_data):
    folder = shared_data / "esci_fixtures"
    return [
        str(folder / "vespa_esci_sample_examples.parquet"),
        str(folder / "vespa_esci_sample_products.parquet"),
        str(folder / "parthu_query_esci_lookup.csv"),
    ]


def topk_by_hand(predictions: dict, k: int) -> float:
    ranked, references = np.asarray(predictions["predictions"]), np.asarray(predictions["references"])
    return float((ranked[:, :k] == references[:, None]).any(axis=1).mean())


def test_esci_tokens_separates_trained_from_untrained(untrained, trained, esci):
    budget = Budget(max_eval_examples=40, batch_size=16, max_seq_length=128)
    before = esci_tokens.run(untrained, esci, budget)
    after = esci_tokens.run(trained, esci, budget)
    for result in (before, after):
        for field in ("title", "description"):
            for k in (1, 3, 5):
                assert result.metrics[f"{field}/top{k}_accuracy"] == pytest.approx(
                    topk_by_hand(result.predictions[field], k)
                )
    # same tokenizer + seed: both models are scored on exactly the same masked tokens
    assert before.predictions["title"]["references"] == after.predictions["title"]["references"]
    assert before.config["masked_tokens"] == after.config["masked_tokens"] and before.n_examples > 500
    # an untrained model is at chance (5 / 1024 for top-5); training on catalog titles lifts both fields
    assert before.metrics["title/top5_accuracy"] < 0.03 and before.metrics["description/top5_accuracy"] < 0.03
    assert after.metrics["title/top5_accuracy"] > before.metrics["title/top5_accuracy"] + 0.02
    assert after.metrics["description/top5_accuracy"] > before.metrics["description/top5_accuracy"] + 0.02


def test_esci_similarity_correlations_match_scipy(trained, esci):
    result = esci_similarity.run(trained, esci, SMALL)
    assert result.task_type == "sentence-similarity" and result.main_metric == "spearman"
    for group, prefix in (("fine_tuned", ""), ("zero_shot", "zero_shot/")):
        predicted, gold = result.predictions[group]["predictions"], result.predictions[group]["references"]
        assert result.metrics[f"{prefix}spearman"] == pytest.approx(stats.spearmanr(predicted, gold)[0])
        assert result.metrics[f"{prefix}pearson"] == pytest.approx(stats.pearsonr(predicted, gold)[0])
        assert set(gold) <= {1.0, 0.66, 0.33, 0.0} and len(gold) == result.n_examples
    assert result.config["train_queries"] == result.config["test_queries"] == 1


def test_esci_classification_f1_matches_sklearn(trained, esci):
    result = esci_classification.run(trained, esci, SMALL)
    predicted = result.predictions["classification"]["predictions"]
    gold = result.predictions["classification"]["references"]
    assert result.metrics["micro_f1"] == pytest.approx(f1_score(gold, predicted, average="micro"))
    assert result.metrics["macro_f1"] == pytest.approx(
        f1_score(gold, predicted, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    )
    assert len(predicted) == result.n_examples and set(predicted) <= {0, 1, 2, 3}


def test_glue_per_task_metrics_average_and_skips(trained, shared_data):
    result = glue.run(trained, [str(shared_data / "glue")], SMALL, tasks=("cola", "stsb", "mrpc", "mnli"))
    cola, stsb, mrpc = (result.predictions[t] for t in ("cola", "stsb", "mrpc"))
    assert result.metrics["cola/matthews_correlation"] == pytest.approx(
        matthews_corrcoef(cola["references"], cola["predictions"])
    )
    assert result.metrics["stsb/spearman"] == pytest.approx(
        stats.spearmanr(stsb["predictions"], stsb["references"])[0]
    )
    assert result.metrics["mrpc/f1"] == pytest.approx(f1_score(mrpc["references"], mrpc["predictions"]))
    task_scores = [result.metrics[f"{t}/score"] for t in ("cola", "stsb", "mrpc")]
    assert result.metrics["average"] == pytest.approx(np.mean(task_scores))
    assert result.skipped == {"mnli": "no data"} and result.n_examples == 3 * 48
    assert result.to_json()["skipped"] == {"mnli": "no data"}


def test_ner_entity_f1_matches_seqeval(trained, shared_data):
    data = [str(shared_data / "ecommerce_ner_lenovo" / "lenovo_ner_test.jsonl.gz")]
    result = ner.run(trained, data, SMALL.override(max_train_examples=64, epochs=2))
    predicted, gold = (
        result.predictions["entities"]["predictions"],
        result.predictions["entities"]["references"],
    )
    assert result.metrics["f1"] == pytest.approx(seqeval_f1(gold, predicted))
    assert [len(p) for p in predicted] == [len(g) for g in gold] and len(gold) == result.n_examples == 48
    assert result.config["test_sentences"] == 48 and result.config["span_issues"]["duplicate"] > 0


def test_checkpoint_without_mlm_head_is_refused(tmp_path, untrained):
    from transformers import AutoModel, AutoTokenizer

    AutoModel.from_pretrained(untrained).save_pretrained(tmp_path)  # the bare encoder, no MLM head
    AutoTokenizer.from_pretrained(untrained).save_pretrained(tmp_path)
    with pytest.raises(ModelHeadError, match="no masked-LM head"):
        esci_tokens.run(str(tmp_path), [], Budget())


def test_architecture_without_a_classification_head_is_refused(tmp_path, shared_data):
    from transformers import MarianConfig, MarianModel

    MarianModel(
        MarianConfig(
            vocab_size=64,
            d_model=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=16,
            decoder_ffn_dim=16,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).save_pretrained(tmp_path)
    from eval_suites.models import load_for_fine_tuning

    with pytest.raises(ModelHeadError, match="no token-classification head"):
        load_for_fine_tuning(tmp_path, "token", 3)


def test_missing_tokenizer_and_empty_splits_are_clear_errors(tmp_path, untrained, esci):
    from transformers import AutoModelForMaskedLM

    AutoModelForMaskedLM.from_pretrained(untrained).save_pretrained(tmp_path)
    with pytest.raises(ModelHeadError, match="no usable tokenizer"):
        esci_tokens.run(str(tmp_path), esci, Budget())
    with pytest.raises(ValueError, match="train split is empty"):
        esci_classification.run(untrained, esci, SMALL.override(max_train_examples=0))
    with pytest.raises(DataFormatError, match="at least 2 distinct queries"):
        esci_similarity.run(untrained, esci[:2], SMALL)  # the vespa fixture has a single query


@pytest.mark.skipif(not rexbert_available(), reason="modeling_rexbert does not export the model classes yet")
def test_suites_run_on_a_rexbert_checkpoint(tmp_path, titles, esci, shared_data):
    checkpoint = str(tiny_checkpoint(tmp_path / "rexbert", titles[:2000], family="rexbert"))
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(checkpoint).model_type == "rexbert"
    tokens = esci_tokens.run(checkpoint, esci, Budget(max_eval_examples=20))
    assert tokens.metrics["title/top5_accuracy"] == pytest.approx(
        topk_by_hand(tokens.predictions["title"], 5)
    )
    entities = ner.run(
        checkpoint,
        [str(shared_data / "ecommerce_ner_lenovo" / "lenovo_ner_test.jsonl.gz")],
        SMALL.override(max_eval_examples=16),
    )
    result = entities.predictions["entities"]
    assert entities.metrics["f1"] == pytest.approx(seqeval_f1(result["references"], result["predictions"]))
    similarity = esci_similarity.run(checkpoint, esci, SMALL)
    result = similarity.predictions["fine_tuned"]
    assert similarity.metrics["spearman"] == pytest.approx(
        stats.spearmanr(result["predictions"], result["references"])[0]
    )
    classes = esci_classification.run(checkpoint, esci, SMALL)
    result = classes.predictions["classification"]
    assert classes.metrics["micro_f1"] == pytest.approx(
        f1_score(result["references"], result["predictions"], average="micro")
    )


def test_esci_tokens_on_a_bert_checkpoint(tmp_path, shared_data, esci):
    """Another encoder family (WordPiece tokenizer, no sparse prediction): full logits, same metric."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    tokenizer = BertTokenizerFast(str(shared_data / "tokenizers" / "bert-base-uncased-vocab.txt"))
    BertForMaskedLM(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        )
    ).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    result = esci_tokens.run(str(tmp_path), esci, Budget(max_eval_examples=10))
    for k in (1, 5):
        assert result.metrics[f"description/top{k}_accuracy"] == pytest.approx(
            topk_by_hand(result.predictions["description"], k)
        )
    assert result.metrics["description/top5_accuracy"] < 0.01  # random weights, 30k vocabulary


def test_sparse_masked_ranking_equals_a_plain_forward(trained, titles):
    """The suite's sparse top-k (logits only at masked positions) equals ranking the full logits of an
    ordinary forward pass of the same model."""
    import torch

    from eval_suites.models import load_masked_lm, load_tokenizer

    tokenizer, model = load_tokenizer(trained), load_masked_lm(trained)
    blocks = esci_tokens.make_blocks(tokenizer, titles[5000:5008], block_size=128)
    masked = esci_tokens.mask_blocks(
        blocks, tokenizer.mask_token_id, set(tokenizer.all_special_ids), rate=0.15, seed=0
    )
    ranked, references = esci_tokens.rank_masked_tokens(model, masked, tokenizer.pad_token_id, batch_size=3)
    expected_ranked, expected_references = [], []
    plain = load_masked_lm(trained)  # a fresh copy, sparse prediction off
    with torch.no_grad():
        for ids, labels in zip(masked.input_ids, masked.labels):
            logits = plain(input_ids=torch.tensor([ids])).logits[0]
            positions = [i for i, label in enumerate(labels) if label != -100]
            expected_ranked += logits[positions].topk(5, dim=-1).indices.tolist()
            expected_references += [labels[i] for i in positions]
    assert references == expected_references
    # padding in the batch may reorder near-ties: the best token must agree everywhere, whole top-5 lists
    # almost everywhere
    assert [r[0] for r in ranked] == [r[0] for r in expected_ranked]
    assert np.mean([a == b for a, b in zip(ranked, expected_ranked)]) >= 0.95
    assert all(
        ids[i] == tokenizer.mask_token_id
        for ids, row in zip(masked.input_ids, masked.labels)
        for i, label in enumerate(row)
        if label != -100
    )
