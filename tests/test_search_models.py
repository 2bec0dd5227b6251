"""Search models: the ESCI collection (official release pair, Hub-style folder, tables), query-grouped splits,
every ranking metric against a computation by hand, BM25 against its formula, the four `rexbert finetune`
tasks end to end with each shipped model loaded in a fresh process without this package and giving the same
scores, `rexbert embed` / `rexbert search`, and bad input as one line or a counted skip.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from process_helpers import REPO_ROOT, python_json

from eval_suites.data.esci_search import (
    EXAMPLES_FILENAME,
    PRODUCTS_FILENAME,
    load_search_collection,
)
from eval_suites.data.tables import DataFormatError
from eval_suites.retrieval import (
    Bm25Retriever,
    Ranking,
    judged_list_ndcg,
    reciprocal_rank_fusion,
    retrieval_metrics,
)
from rexbert.cli import main as rexbert

FIXTURES = REPO_ROOT.parent / "shared" / "data" / "esci_fixtures"


def judgments(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["query_id", "product_id", "esci_label"]).assign(
        query="q", split="test"
    )


# ---- metrics, by hand ------------------------------------------------------------------------------------


def test_ranking_metrics_equal_a_computation_by_hand():
    judged = judgments(
        [("q1", "a", "E"), ("q1", "b", "S"), ("q1", "c", "C"), ("q1", "d", "I"), ("q1", "e", "E"),
         ("q2", "f", "E"), ("q2", "g", "I"), ("q3", "h", "E"), ("q4", "k", "E")]
    )  # fmt: skip
    ranking = Ranking(
        {
            "q1": [("c", 6.0), ("a", 5.0), ("x", 4.0), ("b", 3.0), ("d", 2.0), ("e", 1.0)],
            "q2": [("g", 1.0)],
            "q4": [(f"u{i}", 200.0 - i) for i in range(100)] + [("k", 1.0)],  # the Exact product at rank 101
        }
    )
    log2 = math.log2
    dcg = 0.01 / log2(2) + 1 / log2(3) + 0.1 / log2(5) + 1 / log2(7)
    ideal = 1 / log2(2) + 1 / log2(3) + 0.1 / log2(4) + 0.01 / log2(5)
    expected = {"ndcg@10": dcg / ideal / 4, "mrr@10": 0.5 / 4, "recall@100": 1.0 / 4}
    scores = retrieval_metrics(ranking, judged)
    assert scores == pytest.approx(expected, abs=1e-9)

    task1 = judged[judged["query_id"] == "q1"].assign(score=[1.0, 4.0, 5.0, 3.0, 2.0])  # c, b, d, e, a
    dcg1 = 0.01 / log2(2) + 0.1 / log2(3) + 0 / log2(4) + 1 / log2(5) + 1 / log2(6)
    assert judged_list_ndcg(task1) == pytest.approx(dcg1 / ideal, abs=1e-9)


def test_reciprocal_rank_fusion_by_hand():
    first = Ranking({"q": [("a", 9.0), ("b", 8.0), ("c", 7.0)]})
    second = Ranking({"q": [("c", 0.9), ("a", 0.8)]})
    fused = reciprocal_rank_fusion([first, second], k=60)["q"]
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61}
    assert [p for p, _ in fused] == ["a", "c", "b"]
    assert dict(fused) == pytest.approx(expected)


def test_bm25_scores_follow_the_lucene_formula():
    texts = ["red running shoes", "blue steel kettle", "running shorts running", "red kettle lid"]
    retriever = Bm25Retriever(["a", "b", "c", "d"], texts)
    tokens = [t.split() for t in texts]
    average = sum(map(len, tokens)) / len(tokens)

    def bm25(query: str, doc: list[str], k1: float = 1.5, b: float = 0.75) -> float:
        total = 0.0
        for term in query.split():
            df = sum(term in d for d in tokens)
            idf = math.log(1 + (len(tokens) - df + 0.5) / (df + 0.5))
            tf = doc.count(term)
            # Lucene's BM25 since Lucene 8 (bm25s' default): without Robertson's constant (k1 + 1) factor
            total += idf * tf / (tf + k1 * (1 - b + b * len(doc) / average)) if tf else 0.0
        return total

    found = retriever.search({"q": "red running"}, k=4)["q"]
    expected = sorted(((p, bm25("red running", d)) for p, d in zip("abcd", tokens)), key=lambda x: -x[1])
    assert [p for p, _ in found] == [p for p, s in expected if s > 0]
    assert dict(found) == pytest.approx({p: s for p, s in expected if s > 0}, rel=1e-5)


# ---- the collection ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release_folder(tmp_path_factory) -> Path:
    """The generated ESCI sample under the release's own file names (360 queries, split by the release's
    `split` column)."""
    from rexbert_core.sample_corpus.eval_sets import sample_esci

    folder = tmp_path_factory.mktemp("esci")
    examples, products = sample_esci(n_queries=120)
    examples.to_parquet(folder / EXAMPLES_FILENAME, index=False)
    products.to_parquet(folder / PRODUCTS_FILENAME, index=False)
    return folder


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/data/esci_fixtures is not there")
def test_the_official_pair_with_real_product_text():
    collection = load_search_collection(
        [FIXTURES / "vespa_esci_sample_examples.parquet", FIXTURES / "vespa_esci_sample_products.parquet"],
        product_template="{product_title} by {product_brand}: {product_description}",
    )
    assert len(collection.judgments) == 16 and set(collection.judgments["split"]) == {"test"}
    texts = collection.products["text"]
    assert not texts.str.contains("<br", regex=False).any() and not texts.str.contains("<", regex=False).any()
    raw = pd.read_parquet(FIXTURES / "vespa_esci_sample_products.parquet").set_index("product_id")
    first = collection.products.iloc[0]
    assert first["text"].startswith(f"{' '.join(raw.loc[first['product_id'], 'product_title'].split())} by ")
    with pytest.raises(DataFormatError, match=r"product_template names \['product_colour'\]"):
        load_search_collection([FIXTURES / "vespa_esci_sample_examples.parquet",
                                FIXTURES / "vespa_esci_sample_products.parquet"], product_template="{product_colour}")  # fmt: skip
    assert len(load_search_collection([FIXTURES / "vespa_esci_sample_examples.parquet",
                                       FIXTURES / "vespa_esci_sample_products.parquet"], locale="us").judgments) == 16  # fmt: skip


def test_splits_are_by_query_and_never_leak(release_folder, tmp_path):
    collection = load_search_collection([release_folder])
    train, test = (set(collection.split(s).judgments["query_id"]) for s in ("train", "test"))
    assert train and test and not train & test
    examples = pd.read_parquet(release_folder / EXAMPLES_FILENAME).drop(columns="split")  # no split column
    examples.to_parquet(tmp_path / "examples.parquet")
    hashed = load_search_collection(
        [tmp_path / "examples.parquet", release_folder / PRODUCTS_FILENAME], test_fraction=0.25, seed=3
    )
    train, test = (set(hashed.split(s).judgments["query_id"]) for s in ("train", "test"))
    assert not train & test and len(test) == round(0.25 * 120)
    for split in ("train", "test"):  # every judged product of a split is in that split's corpus
        part = hashed.split(split)
        assert set(part.judgments["product_id"]) <= set(part.products["product_id"])


def test_a_hub_style_dataset_folder_and_a_joined_table(release_folder, tmp_path):
    """tasksource/esci's layout: examples joined with their product text, in a dataset folder."""
    examples = pd.read_parquet(release_folder / EXAMPLES_FILENAME)
    products = pd.read_parquet(release_folder / PRODUCTS_FILENAME)
    joined = examples.merge(products, on=["product_id", "product_locale"])
    (tmp_path / "hub" / "data").mkdir(parents=True)
    joined.to_parquet(tmp_path / "hub" / "data" / "train-00000-of-00001.parquet")
    from_folder = load_search_collection([tmp_path / "hub"])
    from_release = load_search_collection([release_folder])
    assert (
        from_folder.judgments.sort_values(["query_id", "product_id"])
        .reset_index(drop=True)
        .equals(from_release.judgments.sort_values(["query_id", "product_id"]).reset_index(drop=True))
    )
    assert dict(from_folder.text_of()) == dict(from_release.text_of())


def test_bad_input_is_one_line_or_a_counted_skip(release_folder, tmp_path, capsys):
    examples = pd.read_parquet(release_folder / EXAMPLES_FILENAME)
    products = pd.read_parquet(release_folder / PRODUCTS_FILENAME)
    bad_labels = examples.assign(esci_label=examples["esci_label"].replace({"C": "complementary"}))
    bad_labels.to_parquet(tmp_path / "bad_labels.parquet")
    with pytest.raises(DataFormatError, match=r"bad_labels.parquet: unknown ESCI labels \['complementary'\]"):
        load_search_collection([tmp_path / "bad_labels.parquet", release_folder / PRODUCTS_FILENAME])

    lost = set(examples[examples["query_id"] == examples["query_id"].iloc[0]]["product_id"])  # a whole query
    lost |= set(examples["product_id"].iloc[-3:])  # and three judgments of another
    products[~products["product_id"].isin(lost)].to_parquet(tmp_path / "fewer_products.parquet")
    collection = load_search_collection(
        [release_folder / EXAMPLES_FILENAME, tmp_path / "fewer_products.parquet"]
    )
    assert (
        collection.counts["missing_products"] == len(lost)
        and collection.counts["queries_without_products"] == 1
    )

    examples.assign(split="train").to_parquet(tmp_path / "only_train.parquet")
    command = [
        "finetune",
        "retrieval",
        "--model",
        str(tiny_model()),
        "--preset",
        "smoke",
        "--output",
        str(tmp_path / "o"),
    ]
    assert (
        rexbert(
            [
                *command,
                "--data",
                str(tmp_path / "only_train.parquet"),
                str(release_folder / PRODUCTS_FILENAME),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "the 'test' split is empty (splits: ['train'])" in err[-1], err
    assert rexbert([*command, "--data", str(release_folder), "--set", "train.learnig_rate=1"]) == 2
    assert "unknown field 'learnig_rate' (did you mean 'learning_rate'?)" in capsys.readouterr().err


def tiny_model() -> Path:
    """A tiny RexBERT masked-LM with its tokenizer, trained briefly (shared by the session)."""
    from hub_fixtures import trained_model_dir

    return trained_model_dir()


# ---- the tasks end to end, and the shipped models without this package ------------------------------------

# Runs in a fresh interpreter where this project's packages cannot be imported: loads OUTPUT/model the way a
# user of sentence-transformers or transformers would and prints what it computes.
WITHOUT_THE_PACKAGE = """
import json, sys
sys.path = [p for p in sys.path if p not in ("", sys.argv[3])]  # the repository itself; site-packages stays
for name in ("modeling_rexbert", "eval_suites", "trainers", "rexbert", "rexbert_core"):
    sys.modules[name] = None  # importing any of them now fails
task, model_dir, _, inputs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if task == "retrieval":
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(model_dir, device="cpu")
    out = {k: model.encode(v, normalize_embeddings=True).tolist() for k, v in inputs.items()}
elif task == "rerank":
    from sentence_transformers.cross_encoder import CrossEncoder
    out = CrossEncoder(model_dir, device="cpu").predict([tuple(p) for p in inputs]).tolist()
elif task == "classify":
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForSequenceClassification.from_pretrained(model_dir)
    batch = tokenizer([p[0] for p in inputs], [p[1] for p in inputs], padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch).logits.argmax(-1).tolist()
else:
    from transformers import pipeline
    tagger = pipeline("token-classification", model=model_dir, aggregation_strategy="first", device="cpu")
    out = [[(e["entity_group"], e["word"].strip()) for e in tagger(text)] for text in inputs]
print(json.dumps(out))
"""


def without_the_package(task: str, model_dir: Path, inputs) -> object:
    return python_json(WITHOUT_THE_PACKAGE, task, str(model_dir), str(REPO_ROOT), json.dumps(inputs), cwd="/")


def finetune_smoke(task: str, data: Path, output: Path, *settings: str) -> list[str]:
    """`rexbert finetune TASK` on the tiny model with the smoke preset and `--set` `settings`."""
    command = ["finetune", task, "--model", str(tiny_model()), "--data", str(data), "--output", str(output)]
    return [*command, "--preset", "smoke", *(part for setting in settings for part in ("--set", setting))]


@pytest.fixture(scope="module")
def retrieval_run(release_folder, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("retrieval") / "out"
    assert rexbert(finetune_smoke("retrieval", release_folder, output, "matryoshka_dims=[16]")) == 0
    return output


def test_retrieval_ships_a_bi_encoder_with_its_scores(retrieval_run, release_folder):
    from eval_suites.retrieval import DenseIndex
    from eval_suites.tasks.data import keep_queries

    results = json.loads((retrieval_run / "results.json").read_text())
    assert {"bm25", "dense", "hybrid", "dense@base"} <= set(results)
    assert set(results["bm25"]) == {"ndcg@10", "mrr@10", "recall@100"}
    assert results["product_template"].startswith("{product_title}")
    assert json.loads((retrieval_run / "model" / "config.json").read_text())["model_type"] == "modernbert"
    assert (retrieval_run / "results.png").is_file() and "| bm25 |" in (
        retrieval_run / "results.md"
    ).read_text()
    # the shipped model, loaded without this package, ranks the test split to the same scores
    test = keep_queries(load_search_collection([release_folder]).split("test"), 20, 0)
    texts, queries = test.text_of(), test.queries
    embedded = without_the_package(
        "retrieval", retrieval_run / "model", {"q": list(queries.values()), "p": list(texts.values())}
    )
    index = DenseIndex(list(texts), np.asarray(embedded["p"], dtype=np.float32))
    rows, scores = index.search(np.asarray(embedded["q"], dtype=np.float32), 100)
    ranking = Ranking(
        {
            q: [(index.ids[r], float(s)) for r, s in zip(row, score)]
            for q, row, score in zip(queries, rows, scores)
        }
    )
    assert retrieval_metrics(ranking, test.judgments) == pytest.approx(results["dense"], abs=1e-6)


@pytest.fixture(scope="module")
def rerank_run(retrieval_run, release_folder, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("rerank") / "out"
    assert (
        rexbert(finetune_smoke("rerank", release_folder, output, f"retriever={retrieval_run / 'model'}")) == 0
    )
    return output


def test_rerank_ships_a_cross_encoder_with_its_scores(rerank_run, retrieval_run, release_folder):
    from eval_suites.tasks.data import keep_queries

    output = rerank_run
    results = json.loads((output / "results.json").read_text())
    assert {"bm25", "dense", "hybrid", "rerank@bm25", "rerank@dense"} <= set(results)
    assert results["bm25"] == pytest.approx(json.loads((retrieval_run / "results.json").read_text())["bm25"])
    test = keep_queries(load_search_collection([release_folder]).split("test"), 20, 0)
    texts = test.text_of()
    pairs = [[q, texts[p]] for q, p in zip(test.judgments["query"], test.judgments["product_id"])]
    scores = without_the_package("rerank", output / "model", pairs)
    task1 = judged_list_ndcg(test.judgments.assign(score=scores))
    assert task1 == pytest.approx(results["esci_task1_ndcg"]["reranker"], abs=1e-6)
    # the card `rexbert push` writes names the task, the data and the baselines, and indexes the model's scores
    assert (
        rexbert(
            ["push", "model", str(output / "model"), "shop-lab/esci-reranker", "--dry-run", "--write-card"]
        )
        == 0
    )
    card = (output / "model" / "README.md").read_text()
    assert "## Fine-tuned for rerank" in card and "pipeline_tag: text-ranking" in card
    assert f"| bm25 | {results['bm25']['ndcg@10']:.4f} |" in card and "| **rerank@bm25** |" in card
    assert "name: rerank@bm25 ndcg@10" in card and results["product_template"] in card


def test_classify_ships_a_classifier_with_its_scores(release_folder, tmp_path):
    from eval_suites.metrics import compute_metric
    from eval_suites.tasks.classify import labelled_frames
    from eval_suites.tasks.config import task_config

    output = tmp_path / "classify"
    assert rexbert(finetune_smoke("classify", release_folder, output)) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["classes"] == ["E", "S", "C", "I"] and {"model", "tfidf+logreg"} <= set(results)
    _, test, _ = labelled_frames([str(release_folder)], task_config("classify", "smoke"))
    predicted = without_the_package("classify", output / "model", test[["text", "text_pair"]].values.tolist())
    scores = compute_metric("classification_f1", predicted, test["label"].tolist(), labels=[0, 1, 2, 3])
    assert scores == pytest.approx(results["model"], abs=1e-9)


def test_extract_ships_a_tagger_for_the_pipeline(tmp_path):
    from rexbert_core.sample_corpus.eval_sets import sample_ner

    data = tmp_path / "ner.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in sample_ner(n_sentences=80)))
    output = tmp_path / "extract"
    assert rexbert(finetune_smoke("extract", data, output)) == 0
    results = json.loads((output / "results.json").read_text())
    assert {"model", "gazetteer"} <= set(results) and results["gazetteer"]["f1"] > 0.3
    assert (
        results["data"]["max_length"]
        == json.loads((tiny_model() / "config.json").read_text())["max_position_embeddings"]
    )
    tagged = without_the_package("extract", output / "model", ["Acme steel kettle in red"])
    labels = set(json.loads((output / "model" / "config.json").read_text())["id2label"].values())
    assert all(f"B-{kind}" in labels for kind, _ in tagged[0])


def test_embed_and_search_a_catalogue(retrieval_run, rerank_run, release_folder, tmp_path, capsys):
    products = pd.read_parquet(release_folder / PRODUCTS_FILENAME)
    catalogue = products.rename(
        columns={"product_id": "id", "product_title": "title", "product_description": "description"}
    )
    catalogue.to_parquet(tmp_path / "catalogue.parquet")
    index = tmp_path / "index"
    command = ["embed", "--model", str(retrieval_run / "model"), "--input", str(tmp_path / "catalogue.parquet"),
               "--columns", "title,description", "--output", str(index)]  # fmt: skip
    assert rexbert(command) == 0
    from eval_suites.retrieval import DenseIndex

    loaded = DenseIndex.load(index)
    assert loaded.ids == catalogue["id"].tolist() and loaded.embeddings.shape[0] == len(catalogue)
    assert np.allclose(np.linalg.norm(loaded.embeddings, axis=1), 1.0, atol=1e-5)
    capsys.readouterr()
    title = catalogue["title"].iloc[5]
    assert rexbert(["search", "--index", str(index), "--json", "--top", "3", title]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["rank"] for line in lines] == [1, 2, 3]
    assert lines[0]["score"] >= lines[1]["score"] >= lines[2]["score"]
    embedded = without_the_package("retrieval", retrieval_run / "model", {"q": [title]})
    best = int(np.argmax(loaded.embeddings @ np.asarray(embedded["q"][0], dtype=np.float32)))
    assert lines[0]["id"] == loaded.ids[best]  # the search's top product is the exact nearest neighbour
    capsys.readouterr()
    assert rexbert(["search", "--index", str(index), "--rerank", str(rerank_run / "model"), "--json", "--top", "5",
                    "--candidates", "20", title]) == 0  # fmt: skip
    reranked = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    from sentence_transformers.cross_encoder import CrossEncoder

    texts = dict(zip(loaded.ids, loaded.texts))
    direct = CrossEncoder(str(rerank_run / "model"), device="cpu").predict(
        [(title, texts[r["id"]]) for r in reranked]
    )
    assert [r["score"] for r in reranked] == pytest.approx(direct.tolist(), abs=1e-5)
    assert [r["score"] for r in reranked] == sorted((r["score"] for r in reranked), reverse=True)
    catalogue.assign(id="same").to_parquet(tmp_path / "repeated.parquet")
    assert (
        rexbert([*command[:4], str(tmp_path / "repeated.parquet"), *command[5:-1], str(tmp_path / "i2")]) == 2
    )
    assert "repeated ids in 'id'" in capsys.readouterr().err


def test_reranker_lists_hold_unjudged_bm25_negatives(release_folder):
    from eval_suites.tasks.rerank import LAMBDA_LABELS, training_lists, with_mined_negatives

    train = load_search_collection([release_folder]).split("train")
    mined = with_mined_negatives(train, 3)
    added = mined.iloc[len(train.judgments) :]
    assert len(added) == 3 * train.judgments["query_id"].nunique() and set(added["esci_label"]) == {"I"}
    judged_pairs = set(zip(train.judgments["query_id"], train.judgments["product_id"]))
    assert not judged_pairs & set(zip(added["query_id"], added["product_id"]))
    lists = training_lists(train, "lambda", max_products=32, mined_negatives=3)
    assert all(len(docs) == len(labels) for docs, labels in zip(lists["docs"], lists["labels"]))
    assert 2 ** LAMBDA_LABELS["S"] - 1 == pytest.approx(0.1) and 2 ** LAMBDA_LABELS["C"] - 1 == pytest.approx(
        0.01
    )
