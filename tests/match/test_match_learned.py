"""Learned matching: generic pair features, calibrated classifier, `priceintel eval matching`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from priceintel import PriceIntelError, config
from priceintel.cli import main
from priceintel.match.rules import match_listings, score_matches
from priceintel.match.benchmark import BenchmarkError, evaluate_dir, load_dir
from priceintel.match.features import FeatureError, PairFeaturizer, _lcs_len, codes, numbers
from priceintel.match.learned import ModelError, PairClassifier, choose_threshold, prf
from priceintel.match.model import labelled_candidates, pipeline_model, train_listing_model

ABT_BUY = config.shared_data_dir() / "er" / "abt_buy"


# --- a Magellan-layout benchmark made from a demo world (columns unlike Abt-Buy's) -------------


def _magellan_dir(root, seed: int = 5, n_products: int = 120):
    """tableA = amazon listings, tableB = walmart listings, pairs = true pairs + hard negatives."""
    from priceintel.demo import world as demo

    w = demo.generate_world(n_products=n_products, n_days=1, seed=seed)
    lst = w.listings.merge(w.truth_matches, on=["retailer", "item_id"])
    a = lst[lst["retailer"] == "amazon"].reset_index(drop=True)
    b = lst[lst["retailer"] == "walmart"].reset_index(drop=True)
    # attribute columns named unlike any benchmark, a numeric one, and a column only table A has
    ta = pd.DataFrame({"id": np.arange(len(a)) + 100, "product_title": a["title"], "maker": a["brand"],
                       "weight_class": a["category"], "only_in_a": "x"})
    tb = pd.DataFrame({"id": np.arange(len(b)) + 500, "product_title": b["title"], "maker": b["brand"],
                       "weight_class": b["category"]})
    rng = np.random.default_rng(seed)
    rows = []
    for i, sku in enumerate(a["sku"]):
        same = np.flatnonzero((b["sku"] == sku).to_numpy()) if pd.notna(sku) else []
        for j in same:
            rows.append((ta["id"][i], tb["id"][j], 1))
        brand = np.flatnonzero((b["brand"] == a["brand"][i]).to_numpy() & (b["sku"] != sku).to_numpy())
        for j in rng.choice(brand, size=min(4, len(brand)), replace=False):
            rows.append((ta["id"][i], tb["id"][j], 0))
    pairs = pd.DataFrame(rows, columns=["ltable_id", "rtable_id", "label"]).sample(frac=1, random_state=seed)
    n = len(pairs)
    root.mkdir(parents=True, exist_ok=True)
    ta.to_csv(root / "tableA.csv", index=False)
    tb.to_csv(root / "tableB.csv", index=False)
    pairs.iloc[: n * 3 // 5].to_csv(root / "train.csv", index=False)
    pairs.iloc[n * 3 // 5: n * 4 // 5].to_csv(root / "valid.csv", index=False)
    pairs.iloc[n * 4 // 5:].to_csv(root / "test.csv", index=False)
    return root


def test_eval_matching_cli_on_other_columns(tmp_path, capsys):
    d = _magellan_dir(tmp_path / "bench")
    assert main(["eval", "matching", str(d)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) == {"precision", "recall", "f1", "seconds"}
    assert out["f1"] >= 0.9, out
    res = evaluate_dir(d)
    assert res["text_columns"] == ["product_title", "maker", "weight_class"]
    assert res["numeric_columns"] == []
    assert res["pairs"]["test"] > 50 and res["f1"] == out["f1"]


@pytest.mark.slow
@pytest.mark.untraced
def test_abt_buy_test_f1(capsys):
    """Fit on train, threshold on valid, test scored once: the goal is F1 ≥ 0.89."""
    assert main(["eval", "matching", str(ABT_BUY), "--details"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["pairs"] == {"train": 5743, "valid": 1916, "test": 1916}
    assert out["f1"] >= 0.89, out
    assert out["text_columns"] == ["name", "description"] and out["numeric_columns"] == ["price"]


def test_benchmark_dir_errors(tmp_path, capsys):
    d = _magellan_dir(tmp_path / "b", n_products=30)
    with pytest.raises(BenchmarkError, match="not a directory"):
        load_dir(tmp_path / "nope")
    (d / "valid.csv").write_text("ltable_id,rtable_id,label\n100,500,2\n")
    with pytest.raises(BenchmarkError, match=r"valid.csv: column label must be 0 or 1"):
        load_dir(d)
    (d / "valid.csv").write_text("ltable_id,rtable_id,label\n99999,500,1\n")
    with pytest.raises(BenchmarkError, match=r"valid.csv: 1 pair\(s\) name an id not in the tables"):
        load_dir(d)
    (d / "valid.csv").write_text("left,right,label\n1,2,1\n")
    with pytest.raises(BenchmarkError, match=r"valid.csv: column\(s\) \['ltable_id', 'rtable_id'\] missing"):
        load_dir(d)
    (d / "tableB.csv").write_text("id,product_title\n1,a\n1,b\n")
    with pytest.raises(BenchmarkError, match="tableB.csv: column id has missing or repeated values"):
        load_dir(d)
    (d / "test.csv").unlink()
    assert main(["eval", "matching", str(d)]) == 2
    assert "error:" in capsys.readouterr().err


# --- features --------------------------------------------------------------------------------


def test_codes_numbers_and_lcs():
    assert codes("speck toughskin nn4-ts-blk for ipod 4g") == ["nn4tsblk"]  # '4g' is too short
    assert codes("panasonic lm-af30u3 three pack") == ["lmaf30u3"]
    assert codes("plain words only 2024") == []
    assert numbers("13.5 megapixel, 4x zoom 2 - 1/2") >= {"13.5", "2"}
    assert _lcs_len("vgnaw110jh", "aw110jh") == 7 and _lcs_len("", "x") == 0


def test_featurizer_generic_columns_and_errors():
    A = pd.DataFrame({"id": [1, 2], "title": ["Sony WH-1000XM4 headphones", "Bose QC35 II"],
                      "cost": ["$349.00", "299"], "extra": ["a", "b"]})
    B = pd.DataFrame({"id": [7, 8, 9], "title": ["sony wh1000xm4 black", "bose quietcomfort 35 ii", None],
                      "cost": [329.0, None, 10.0]})
    f = PairFeaturizer().fit(A, B)
    assert f.text_cols == ["title"] and f.num_cols == ["cost"]
    X = f.transform([0, 0, 1, 1], [0, 1, 1, 2])
    assert len(X) == 4 and X.loc[0, "code_contained"] == 1.0 and X.loc[1, "code_contained"] == 0.0
    assert X.loc[0, "all_cos_char"] > X.loc[1, "all_cos_char"]
    assert np.isnan(X.loc[3, "all_ratio"])  # missing title on the right: unknown, not zero
    assert X.loc[0, "num_cost_logratio"] == pytest.approx(abs(np.log(349 / 329)))
    assert X.loc[0, "nb_rank_left"] == 0.0  # the best candidate of its row
    with pytest.raises(FeatureError, match="share no attribute column"):
        PairFeaturizer().fit(A[["id", "extra"]], B[["id", "title"]])
    with pytest.raises(FeatureError, match="outside the fitted tables"):
        f.transform([5], [0])
    with pytest.raises(FeatureError, match="before fit"):
        PairFeaturizer().transform([0], [0])
    with pytest.raises(FeatureError, match="DataFrame"):
        PairFeaturizer().fit("tableA.csv", B)


# --- classifier and thresholds ----------------------------------------------------------------


def test_prf_and_thresholds():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.4, 0.35, 0.2, 0.1, 0.6, 0.7])
    assert prf(y, p >= 0.5) == {"precision": 0.75, "recall": 0.75, "f1": 0.75, "tp": 3, "fp": 1, "fn": 1}
    assert choose_threshold(y, p) == 0.4  # 4 tp, 1 fp: F1 8/9 beats every other cut
    assert prf(y, p >= 0.4)["f1"] == pytest.approx(8 / 9)
    assert choose_threshold(y, p, min_precision=1.0) == 0.7
    assert choose_threshold(np.zeros(3), np.array([0.1, 0.2, 0.3]), min_precision=0.9) == 0.3


def test_classifier_is_calibrated_and_checks_input():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=600) > 0.5).astype(int)
    X = pd.DataFrame(x, columns=["a", "b", "c"])
    clf = PairClassifier(max_iter=60).fit(X.iloc[:400], y[:400])
    p = clf.predict_proba(X.iloc[400:])
    assert ((p >= 0) & (p <= 1)).all()
    # calibration: mean predicted probability close to the observed rate on held-out rows
    assert abs(p.mean() - y[400:].mean()) < 0.08
    assert prf(y[400:], p >= 0.5)["f1"] > 0.8
    with pytest.raises(ModelError, match="labels 0 and 1"):
        PairClassifier().fit(X, np.zeros(600))
    with pytest.raises(ModelError, match="feature rows"):
        PairClassifier().fit(X, y[:10])
    with pytest.raises(ModelError, match="missing"):
        clf.predict_proba(X[["a"]])
    with pytest.raises(ModelError, match="before fit"):
        PairClassifier().predict_proba(X)
    assert len(clf.predict_proba(X.iloc[:0])) == 0
    assert isinstance(ModelError("x"), PriceIntelError)


# --- learned listing matcher -------------------------------------------------------------------


def test_learned_listing_matcher_on_an_unseen_demo_world():
    from priceintel.demo import world as demo

    w = demo.generate_world(n_products=60, n_days=1, seed=8)
    model = pipeline_model(w.listings, w.products, labels=None, demo_seed=1042, demo_products=120)
    assert model is not None and model.n_positive > 100 and 0 < model.review_low <= model.threshold <= 1
    m = match_listings(w.listings, w.products, model=model)
    r = score_matches(m, w.truth_matches)
    assert r["f1"] >= 0.98, r
    assert set(m["method"]) <= {"gtin", "learned"} and "learned" in set(m["method"])
    assert not m.duplicated(["retailer", "sku"]).any()


def test_labels_override_and_train():
    from priceintel.demo import world as demo

    w = demo.generate_world(n_products=20, n_days=1, seed=9)
    truth = w.truth_matches
    base = match_listings(w.listings, w.products)
    amazon = base[(base["retailer"] == "amazon") & (base["status"] == "auto")].iloc[0]
    other = next(s for s in w.products["sku"] if s != amazon["sku"])
    labels = pd.DataFrame({"retailer": ["amazon", "amazon"], "item_id": [amazon["item_id"]] * 2,
                           "sku": [amazon["sku"], other], "label": [0, 1]})
    m = match_listings(w.listings, w.products, labels=labels).set_index(["retailer", "item_id"])
    # the human verdicts stand against the matcher: the listing goes to the confirmed sku
    row = m.loc[("amazon", amazon["item_id"])]
    assert (row["sku"], row["method"], row["status"]) == (other, "human", "confirmed")
    # a rejection alone: that pair is never proposed again
    m2 = match_listings(w.listings, w.products, labels=labels.iloc[:1])
    got = m2[(m2["retailer"] == "amazon") & (m2["item_id"] == amazon["item_id"])]
    assert (got["sku"] != amazon["sku"]).all()
    # labels are training pairs, and win over the truth for the same pair
    data = labelled_candidates(w.listings, w.products, truth=truth, labels=labels)
    hit = data[(data["item_id"] == amazon["item_id"])]
    assert set(hit.loc[hit["label"] == 1, "item_id"]) == {amazon["item_id"]}
    assert data["label"].isin([0, 1]).all() and data["label"].sum() >= 50
    only_labels = labelled_candidates(w.listings, w.products, labels=labels)
    assert len(only_labels) == 2
    with pytest.raises(ModelError, match="matching and non-matching"):
        train_listing_model(w.listings, w.products, labels=labels.iloc[:1])
    with pytest.raises(ModelError, match="truth frame or stored labels"):
        train_listing_model(w.listings, w.products)
    with pytest.raises(PriceIntelError, match="label must be 1"):
        match_listings(w.listings, w.products, labels=labels.assign(label="yes"))
    assert pipeline_model(w.listings, w.products, labels=None, demo_seed=None) is None
