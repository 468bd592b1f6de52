"""Matching a team's own data without a demo truth: identifier pairs, own_data_model, cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from priceintel import config
from priceintel.match import rules
from priceintel.match.learned import ModelError
from priceintel.match.model import (
    IDENTIFIER_FEATURES,
    hand_score,
    identifier_pairs,
    own_data_model,
    own_training_pairs,
    pair_features,
)

ABT_BUY = config.shared_data_dir() / "er" / "abt_buy"


@pytest.fixture(scope="module")
def world():
    from priceintel.demo import world as demo

    return demo.generate_world(n_products=100, n_days=1, seed=2031)


def test_identifier_pairs_are_right_and_need_the_brand_for_an_mpn(world):
    ids = identifier_pairs(world.listings, world.products)
    got = ids.merge(world.truth_matches, on=["retailer", "item_id"], suffixes=("", "_true"))
    assert len(got) == len(ids) > 150 and set(ids["via"]) == {"gtin", "mpn"}
    assert (got["sku"] == got["sku_true"]).all()  # every identifier pair is a true match
    assert (ids.loc[ids["retailer"] == "amazon", "via"] == "mpn").all()  # amazon shows no GTIN
    # an MPN under another brand is no identifier; a GTIN two catalogue rows share is ambiguous
    one = world.listings[world.listings["mpn"].notna() & world.listings["gtin"].isna()].iloc[:1]
    assert len(identifier_pairs(one, world.products)) == 1
    assert identifier_pairs(one.assign(brand="Other Brand Inc"), world.products).empty
    g = world.listings[world.listings["gtin"].notna() & world.listings["mpn"].isna()].iloc[:1]
    truth = world.truth_matches.set_index(["retailer", "item_id"])
    sku = truth.loc[(g["retailer"].iloc[0], g["item_id"].iloc[0]), "sku"]
    twin = world.products[world.products["sku"] == sku].assign(sku="TWIN")
    assert identifier_pairs(g, world.products).shape[0] == 1
    assert identifier_pairs(g, pd.concat([world.products, twin])).empty


def test_identifier_training_pairs_do_not_leak(world):
    data = own_training_pairs(world.listings, world.products)
    assert set(data["source"]) == {"identifier"}
    per = data.groupby(["retailer", "item_id"])["label"].agg(["sum", "size"])
    assert (per["sum"] == 1).all() and (per["size"] > 1).mean() > 0.9  # one positive + its candidate negatives
    assert data[list(IDENTIFIER_FEATURES)].isna().all().all()
    # hand_score is the rules' score recomputed without the identifier columns
    lp, pp, feats = rules.candidate_features(world.listings, world.products)
    assert np.allclose(hand_score(feats), feats["hand_score"])
    assert np.allclose(hand_score(data), data["hand_score"])
    # a human label wins over the identifier for the same pair
    pos = data[data["label"] == 1].iloc[0]
    lab = pd.DataFrame({"retailer": [pos["retailer"]], "item_id": [pos["item_id"]],
                        "sku": [pp["sku"].iloc[int(pos["pi"])]], "label": [0]})
    again = own_training_pairs(world.listings, world.products, labels=lab)
    row = again[(again["item_id"] == pos["item_id"]) & (again["pi"] == pos["pi"])]
    assert row[["label", "source"]].values.tolist() == [[0, "label"]]


def test_no_own_data_means_no_model_and_conservative_rules(world):
    bare = world.listings.drop(columns=["gtin", "mpn"])
    assert own_data_model(bare, world.products, generic=False) is None
    only_neg = pd.DataFrame({"retailer": ["amazon"], "item_id": [bare["item_id"].iloc[0]],
                             "sku": [world.products["sku"].iloc[0]], "label": [0]})
    assert own_data_model(bare, world.products, labels=only_neg, generic=False) is None
    # a handful of labels is no model: the rules do better than a classifier fitted on them
    from priceintel.match.benchmark import _review_labels

    few = _review_labels(world, 20)
    assert few["label"].sum() > 0 and own_data_model(bare, world.products, labels=few, generic=False) is None
    m = rules.match_listings(world.listings, world.products, model=None)
    fz = m[m["method"] == "fuzzy"]
    assert rules.NO_MODEL_THRESHOLD == 0.75 and rules.NO_MODEL_REVIEW_BAND == (0.45, 0.75)
    assert (fz["status"] == np.where(fz["score"] >= 0.75, "auto", "review")).all() and fz["score"].min() >= 0.45
    assert rules.score_matches(m, world.truth_matches)["precision"] == 1.0


def test_identifier_model_matches_listings_without_identifiers(world):
    model = own_data_model(world.listings, world.products, generic=True, seed=17)
    assert model is not None and set(model.sources) == {"identifier"}  # ≥ 100 own positives: no generic pairs
    assert 0.5 <= model.threshold <= 1 and model.review_low <= model.threshold
    m = rules.match_listings(world.listings, world.products, model=model)
    assert "learned" in set(m["method"]) and not m.duplicated(["retailer", "sku"]).any()
    r = rules.score_matches(m, world.truth_matches)
    assert r["precision"] >= 0.99 and r["recall"] >= 0.97, r
    with pytest.raises(ModelError, match="1 pair\\(s\\) name a listing or sku not given"):
        pair_features(world.listings, world.products,
                      pd.DataFrame({"retailer": ["amazon"], "item_id": ["nope"], "sku": [world.products["sku"][0]]}))


@pytest.mark.slow
def test_generic_cold_start_model_on_a_fresh_world(world):
    bare = world.listings.drop(columns=["gtin", "mpn"])
    model = own_data_model(bare, world.products, generic=True)
    assert model is not None and set(model.sources) == {"generic"} and model.threshold >= 0.5
    r = rules.score_matches(rules.match_listings(world.listings, world.products, model=model), world.truth_matches)
    assert r["precision"] >= 0.99 and r["recall"] >= 0.97, r
    # the same training pairs again (tomorrow's run over unchanged listings): the same model, a copy of its own
    again = own_data_model(bare, world.products, generic=True)
    assert again is not model and (again.threshold, again.review_low, again.sources) == (
        model.threshold, model.review_low, model.sources)
    again.threshold = 2.0
    assert own_data_model(bare, world.products, generic=True).threshold == model.threshold


@pytest.mark.slow
@pytest.mark.untraced
def test_cold_start_report_on_abt_buy():
    if not (ABT_BUY / "test.csv").exists():
        pytest.skip(f"Abt-Buy benchmark not found at {ABT_BUY} (set PRICEINTEL_SHARED_DATA)")
    from priceintel.match.benchmark import cold_start_report

    r = cold_start_report(ABT_BUY, n_products=100)
    a = r["abt_buy"]
    # measured (seed 17): rules P .81 R .64; generic P .94 R .14 AP .34; identifiers P .95 R .40 AP .83
    assert a["identifier_pairs_checked"]["precision"] == 1.0 and a["identifier_pairs_checked"][
        "on_labelled_train_valid_pairs"] >= 100
    assert a["rules_only"]["precision"] >= 0.75 and a["rules_only"]["recall"] >= 0.55
    assert a["identifiers"]["precision"] >= 0.9 and a["identifiers"]["recall"] >= 0.3
    assert a["identifiers"]["average_precision"] >= 0.78
    assert a["generic"]["precision"] >= 0.8 and a["generic"]["average_precision"] >= 0.25
    assert set(a["identifiers"]["sources"]) == {"identifier"}
    for name, part in r["demo"].items():
        if isinstance(part, dict):
            assert part["all_listings"]["precision"] >= 0.98, (name, part)
