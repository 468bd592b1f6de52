"""Category classifier for unmatched listings, on a generated demo world (truth only to score)."""

from __future__ import annotations

import pytest

from priceintel import PriceIntelError
from priceintel.match.categorize import (
    UNMATCHED_COLUMNS,
    CategoryError,
    CategoryModel,
    catalogue_titles,
    categorize_unmatched,
    category_report,
)
from priceintel.match.rules import match_listings


@pytest.fixture(scope="module")
def world():
    from priceintel.demo import world as demo

    return demo.generate_world(n_products=200, n_days=1, seed=5)


def test_fit_predict_and_abstain_on_gibberish(world):
    m = CategoryModel().fit(catalogue_titles(world.products), world.products["category"], seed=17)
    assert 0.5 <= m.threshold <= 1 and m.holdout["titles"] == 50
    assert m.holdout["precision_answered"] >= 0.9
    got = m.predict(["xqzv blorf 7781", "zzkk qqpl", "Golden Harvest Sea Salt Popcorn, 10 Ounce", ""])
    assert list(got.columns) == ["category", "confidence"]
    assert got["category"].isna().tolist() == [True, True, False, True]
    assert got["category"][2] == "snacks" and got["confidence"][2] >= m.threshold
    assert m.predict([]).empty


def test_fit_errors_are_one_line_messages(world):
    with pytest.raises(CategoryError, match=r"at least 2 categories \(got 1\)") as e:
        CategoryModel().fit(["a cola", "b cola", "c cola", "d cola", "e cola"], ["drinks"] * 5)
    assert "\n" not in str(e.value)
    with pytest.raises(CategoryError, match=r"≥ 5 titles each; too few in \{'snacks': 2\}"):
        CategoryModel().fit(["a", "b", "c", "d", "e", "f", "g"], ["drinks"] * 5 + ["snacks"] * 2)
    with pytest.raises(CategoryError, match="3 titles but 2 categories"):
        CategoryModel().fit(["a", "b", "c"], ["x", "y"])
    with pytest.raises(PriceIntelError, match="before fit"):
        CategoryModel().predict(["cola"])
    with pytest.raises(CategoryError, match=r"products: column\(s\) \['category'\] missing"):
        catalogue_titles(world.products.drop(columns="category"))


def test_categorize_unmatched_on_the_demo_world(world):
    matches = match_listings(world.listings, world.products)
    out = categorize_unmatched(world.listings, world.products, matches)
    assert list(out.columns) == UNMATCHED_COLUMNS
    done = matches[matches["status"].isin(["auto", "confirmed"])]
    keys = set(zip(out["retailer"], out["item_id"]))
    assert keys and not keys & set(zip(done["retailer"], done["item_id"].astype(str)))
    # the generator's own category of those listings (never shown to the classifier) scores it
    truth = world.listings.astype({"item_id": str}).merge(out, on=["retailer", "item_id"], suffixes=("_true", ""))
    answered = truth[truth["category"].notna()]
    assert len(answered) >= 0.8 * len(truth)
    assert (answered["category"] == answered["category_true"]).mean() >= 0.9
    assert set(out["source"]) <= {"classifier", "abstained"}
    empty = categorize_unmatched(world.listings.iloc[:0], world.products, matches)
    assert empty.empty and list(empty.columns) == UNMATCHED_COLUMNS


def test_category_report_figures():
    r = category_report(world_seed=2031, n_products=200)
    # measured 1.0 everywhere at 400 products; the demo vocabulary is clean, so floors are high
    for part in ("catalogue_holdout", "listings_of_our_products", "listings_not_ours"):
        assert r[part]["accuracy_answered"] >= 0.95 and r[part]["coverage"] >= 0.9, (part, r[part])
    assert "stratified" in r["split"]
