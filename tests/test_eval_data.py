"""Loaders for the real formats: ESCI (official pair, Hub layout, CSV export, judgments + ESCI-S),
GLUE TSVs, span-annotated NER; and the errors for unusable input."""

import gzip
import json
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from eval_suites.data import (  # noqa: E402
    DataFormatError,
    load_esci_pairs,
    load_glue_task,
    load_product_texts,
    load_span_ner,
    spans_to_bio,
    split_by_query,
)


@pytest.fixture(scope="module")
def esci(shared_data):
    folder = shared_data / "esci_fixtures"
    return {
        "examples": str(folder / "vespa_esci_sample_examples.parquet"),
        "products": str(folder / "vespa_esci_sample_products.parquet"),
        "csv": str(folder / "parthu_query_esci_lookup.csv"),
        "judgments": str(shared_data / "esci_us_judgments" / "esci_us_judgments.parquet"),
    }


def test_official_examples_join_products(esci):
    pairs = load_esci_pairs([esci["examples"], esci["products"]])
    examples = pd.read_parquet(esci["examples"])
    products = pd.read_parquet(esci["products"]).set_index("product_id")
    assert len(pairs) == len(examples) == 16 and pairs.dropped_without_text == 0
    assert pairs.frame["esci_label"].value_counts().to_dict() == {"I": 7, "S": 6, "E": 3}
    row = pairs.frame.iloc[0]
    assert row["product_title"] == " ".join(products.loc[row["product_id"], "product_title"].split())
    assert "<br>" not in " ".join(pairs.frame["product_description"])  # HTML stripped


def test_csv_export_with_product_text(esci):
    pairs = load_esci_pairs([esci["csv"]])
    assert len(pairs) == 99
    assert pairs.frame["esci_label"].value_counts().to_dict() == {"E": 76, "I": 17, "S": 5, "C": 1}
    assert pairs.frame["product_title"].str.startswith("iPhone Charger").iloc[0]


def test_hub_layout_with_full_label_names(tmp_path, esci):
    """tasksource/esci columns: examples joined with product text, labels spelled out."""
    joined = pd.read_parquet(esci["examples"]).merge(
        pd.read_parquet(esci["products"]).drop(columns=["locale", "product_locale"]), on="product_id"
    )
    names = {"E": "Exact", "S": "Substitute", "C": "Complement", "I": "Irrelevant"}
    joined["esci_label"] = joined["esci_label"].map(names)
    joined["product_text"] = joined["product_title"] + " " + joined["product_description"]
    path = tmp_path / "train-00000-of-00001.parquet"
    joined.drop(columns=["split"]).to_parquet(path)
    pairs = load_esci_pairs([str(path)])
    assert pairs.frame["esci_label"].value_counts().to_dict() == {"I": 7, "S": 6, "E": 3}
    assert (pairs.frame["product_title"] == joined["product_title"].map(lambda t: " ".join(t.split()))).all()


def test_judgments_need_product_text_and_join_esci_s_records(tmp_path, esci):
    with pytest.raises(DataFormatError, match="no product text"):
        load_esci_pairs([esci["judgments"]])
    judgments = pd.read_parquet(esci["judgments"])
    some = judgments.drop_duplicates("product_id").head(40)
    records = tmp_path / "esci_s_sample.jsonl.gz"  # ESCI-S layout: asin, title, description, bullets (list)
    with gzip.open(records, "wt", encoding="utf-8") as out:
        for i, asin in enumerate(some["product_id"]):
            out.write(
                json.dumps(
                    {
                        "asin": asin,
                        "title": f"Product number {i}",
                        "description": f"<p>About {i}</p>",
                        "bullets": ["one", "two"],
                        "type": "product",
                        "locale": "us",
                    }
                )
                + "\n"
            )
    pairs = load_esci_pairs([esci["judgments"], str(records)])
    matched = judgments["product_id"].isin(set(some["product_id"]))
    assert len(pairs) == matched.sum()
    assert pairs.dropped_without_text == len(judgments) - matched.sum()  # counted, not silently lost
    assert set(pairs.frame["product_description"]) <= {f"About {i}" for i in range(40)}


def test_unknown_labels_and_missing_columns_are_named(tmp_path, esci):
    bad = pd.read_parquet(esci["examples"]).assign(esci_label=["E", "X"] * 8)
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataFormatError, match=r"unknown ESCI labels \['X'\]"):
        load_esci_pairs([str(tmp_path / "bad.parquet"), esci["products"]])
    pd.DataFrame({"question": ["a"], "answer": ["b"]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(DataFormatError, match="not an ESCI file.*query \\+ esci_label"):
        load_esci_pairs([str(tmp_path / "other.parquet")])
    pd.DataFrame({"query": ["a"], "esci_label": ["E"], "product_id": ["B0"]}).to_parquet(
        tmp_path / "nojoin.parquet"
    )
    with pytest.raises(DataFormatError, match="1 pairs had no matching product"):
        load_esci_pairs([str(tmp_path / "nojoin.parquet"), esci["products"]])
    with pytest.raises(DataFormatError, match="no such file"):
        load_esci_pairs([str(tmp_path / "missing.parquet")])
    with pytest.raises(DataFormatError, match="could not load Hub dataset tasksource/esci"):
        load_esci_pairs(["tasksource/esci"])  # the Hub layout by id: unreachable offline, named in the error


def test_split_by_query_is_deterministic_and_disjoint(esci):
    frame = load_esci_pairs([esci["examples"], esci["products"], esci["csv"]]).frame
    train, test = split_by_query(frame, 0.5, seed=0)
    again_train, again_test = split_by_query(frame.sample(frac=1, random_state=3), 0.5, seed=0)
    assert set(train["query_id"]).isdisjoint(test["query_id"])
    assert len(train) + len(test) == len(frame) and len(train) and len(test)
    assert set(test["product_id"]) == set(again_test["product_id"])  # row order does not matter
    with pytest.raises(DataFormatError, match="at least 2 distinct queries"):
        split_by_query(frame[frame["query_id"] == frame["query_id"].iloc[0]], 0.5, seed=0)


def test_product_texts_from_esci_products_and_catalog(shared_data, esci):
    products = load_product_texts([esci["products"], esci["examples"]])  # examples carry no text: passed over
    assert len(products) == 16 and (products["product_title"].str.len() > 0).all()
    catalog = load_product_texts([str(shared_data / "ecommerce_products_vespa" / "products.parquet")])
    assert len(catalog) == 24576  # every catalog product has text (one has an empty title, but a description)
    with pytest.raises(DataFormatError, match="no file with product text"):
        load_product_texts([esci["judgments"]])


@pytest.mark.parametrize(
    "task, n_dev, label_counts, source",
    [
        ("sst2", 872, {1: 444, 0: 428}, "alps_train_split.tsv"),
        ("mrpc", 408, {1: 279, 0: 129}, "train.tsv"),
        ("cola", 1043, {1: 721, 0: 322}, "train.tsv"),
        ("rte", 277, {0: 146, 1: 131}, "train.tsv"),
        ("stsb", 1500, None, "train.tsv"),
    ],
)
def test_glue_tsvs_match_the_official_dev_sets(shared_data, task, n_dev, label_counts, source):
    data = load_glue_task(str(shared_data / "glue"), task)
    assert len(data.validation) == n_dev and data.train_source == source and len(data.train) > 0
    if label_counts:
        assert pd.Series(data.validation["label"]).value_counts().to_dict() == label_counts
    else:
        assert min(data.validation["label"]) == 0.0 and max(data.validation["label"]) == 5.0
    if task in ("mrpc", "rte", "stsb"):
        assert "text_b" in data.validation.column_names


def test_glue_qnli_uses_a_dev_split_and_missing_tasks_are_skipped(shared_data):
    qnli = load_glue_task(str(shared_data / "glue"), "qnli")
    assert qnli.train_source == "dev-split" and len(qnli.train) + len(qnli.validation) == 5463
    pairs = lambda split: set(zip(split["text_a"], split["text_b"]))  # noqa: E731
    assert pairs(qnli.train).isdisjoint(pairs(qnli.validation))
    assert load_glue_task(str(shared_data / "glue"), "mnli") == "no data"
    assert load_glue_task(str(shared_data / "glue"), "qqp") == "no data"
    hub = load_glue_task("nyu-mll/glue", "rte")  # offline here: skipped with the reason, not a crash
    assert isinstance(hub, str) and hub.startswith("could not load nyu-mll/glue/rte")


def test_glue_unlabeled_split_is_rejected(tmp_path, shared_data):
    (tmp_path / "RTE").mkdir()
    test_split = (shared_data / "glue" / "RTE" / "test.tsv").read_text(encoding="utf-8")
    (tmp_path / "RTE" / "dev.tsv").write_text(test_split, encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"unknown GLUE rte labels \['-1'\]"):
        load_glue_task(str(tmp_path), "rte")


def test_spans_become_bio_tags():
    text = "Lenovo ThinkPad X1 Carbon with Intel Core i7"
    spans = [
        {"start": 0, "end": 6, "type": "Brand"},
        {"start": 7, "end": 25, "type": "Product"},
        {"start": 31, "end": 44, "type": "Component"},
    ]
    tokens, tags, issues = spans_to_bio(text, spans + [spans[0], {"start": 0, "end": 15, "type": "Product"}])
    # the longer span at a start wins; spans touching its tokens are dropped and counted
    assert tags == ["B-Product", "I-Product", "O", "O", "O", "B-Component", "I-Component", "I-Component"]
    assert issues == {"duplicate": 1, "overlapping": 2, "misaligned": 0} and tokens[1] == "ThinkPad"
    _, tags, issues = spans_to_bio(text, spans + [spans[0]])
    assert tags[:2] == ["B-Brand", "B-Product"] and issues == {
        "duplicate": 1,
        "overlapping": 0,
        "misaligned": 0,
    }
    _, tags, issues = spans_to_bio("a bc", [{"start": 3, "end": 4, "type": "X"}])
    assert tags == ["O", "B-X"] and issues["misaligned"] == 1


def test_lenovo_ner_file(shared_data):
    data = load_span_ner(shared_data / "ecommerce_ner_lenovo" / "lenovo_ner_test.jsonl.gz")
    assert len(data.tokens) == 500 and data.entity_types == ["Attribute", "Brand", "Component", "Product"]
    n_entities = sum(tag.startswith("B-") for tags in data.tags for tag in tags)
    issues = data.span_issues
    assert issues["duplicate"] > 100 and issues["overlapping"] > 0  # counted, not silently lost
    assert n_entities == 2645 - issues["duplicate"] - issues["overlapping"]
    assert data.label_names[0] == "O" and len(data.label_names) == 9


def test_ner_bad_records(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "no spans key"}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="needs 'sentences' and 'spans'"):
        load_span_ner(path)
    path.write_text(
        json.dumps({"sentences": "a b", "spans": [{"start": 0, "end": 1}]}) + "\n", encoding="utf-8"
    )
    with pytest.raises(DataFormatError, match="start, end and type"):
        load_span_ner(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no annotated sentences"):
        load_span_ner(path)


def test_glue_malformed_lines_are_counted(tmp_path):
    folder = tmp_path / "QQP"
    folder.mkdir()
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    rows = "".join(f"{i}\t{i}\t{i + 1}\tHow do I {i}?\tWhat is {i}?\t{i % 2}\n" for i in range(6))
    (folder / "dev.tsv").write_text(header + rows, encoding="utf-8")
    (folder / "train.tsv").write_text(
        header + rows + "99\tbroken line\textra\tfields\there\t1\t0\t7\n" + rows, encoding="utf-8"
    )
    data = load_glue_task(str(tmp_path), "qqp")
    assert len(data.validation) == 6 and len(data.train) == 12 and data.malformed_lines == 1
    assert list(data.validation["label"]) == [0, 1, 0, 1, 0, 1]
