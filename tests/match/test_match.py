"""Listing matching: GTIN/title/size helpers (match.normalize), the matcher on hand-made and demo frames, scoring."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from priceintel import PriceIntelError
from priceintel.items import MATCH_COLUMNS, is_valid_gtin, normalize_gtin
from priceintel.match.normalize import extract_model_numbers, extract_size, normalize_title
from priceintel.match.rules import WEIGHTS, MatchError, match_listings, score, score_matches


def _with_check(body: str) -> str:
    """Append the GS1 check digit to a GTIN body."""
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


# --- GTIN ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["4006381333931", "036000291452", "96385074", "10012345678902",
                                  "0 36000 29145 2", "036000-291452"])
def test_valid_gtins(code):
    assert is_valid_gtin(code)


@pytest.mark.parametrize("code", ["4006381333932", "03600029145", "123", "", None, float("nan"),
                                  "abc", 12.5, True, "400638133393100"])
def test_invalid_gtins(code):
    assert not is_valid_gtin(code)
    assert normalize_gtin(code) is None


def test_normalize_gtin_makes_upc_equal_ean_and_keeps_packaging_indicator():
    ean = "0036000291452"
    assert normalize_gtin("036000291452") == ean  # 12-digit UPC
    assert normalize_gtin(ean) == ean
    assert normalize_gtin("00036000291452") == ean  # GTIN-14 with indicator 0
    assert normalize_gtin(36000291452) == ean  # read as a number: leading zero lost
    assert normalize_gtin(36000291452.0) == ean
    assert normalize_gtin("96385074") == "0000096385074"
    assert normalize_gtin("10012345678902") == "10012345678902"


# --- titles, sizes, model numbers ------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("Coca-Cola Classic Soda, 12oz Cans", "coca cola classic soda 12 oz cans"),
    ("Tide Liquid 92 Fl. Oz.", "tide liquid 92 fl oz"),
    ("Tide Liquid 92 fluid ounces", "tide liquid 92 fl oz"),
    ("Sparkling Water 16floz", "sparkling water 16 fl oz"),
    ("LaCroix Lime (Pack of 6)", "lacroix lime 6 ct"),
    ("LaCroix Lime 6-Pack", "lacroix lime 6 ct"),
    ("LaCroix Lime 6ct", "lacroix lime 6 ct"),
    ("LaCroix Lime 6 Count", "lacroix lime 6 ct"),
    ("Ben &amp; Jerry&#39;s Caf&eacute; Ice Cream™, 1.5 L", "ben and jerry s cafe ice cream 1.5 l"),
    ("Dog Food 3 Pounds", "dog food 3 lb"),
    ("  Multiple   spaces\tand\nbreaks. ", "multiple spaces and breaks"),
    (None, ""),
    (float("nan"), ""),
])
def test_normalize_title(raw, expected):
    assert normalize_title(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("Coffee 12oz", (340.1943, "g")),
    ("Coffee 12 Ounce (Pack of 1)", (340.1943, "g")),
    ("Dish Soap 16 fl oz", (473.1765, "ml")),
    ("Juice 1.5 L", (1500.0, "ml")),
    ("Water 500ml", (500.0, "ml")),
    ("Dog Food 2 lb", (907.1847, "g")),
    ("Flour 1 kg", (1000.0, "g")),
    ("Spice 50 g", (50.0, "g")),
    ("Cleaner 1 Gallon", (3785.4118, "ml")),
    ("Wipes 64 ct", (64.0, "ct")),
    ("Bars, Pack of 12", (12.0, "ct")),
    ("USB-C Cable 6 ft", (182.88, "cm")),
    ("Soda 6 ct 12 fl oz", (354.8824, "ml")),  # a measure wins over a count
    ("No size here", None),
])
def test_extract_size(raw, expected):
    assert extract_size(raw) == expected


def test_extract_model_numbers():
    assert extract_model_numbers("Sony WH-1000XM4 Wireless Headphones") == ["WH1000XM4"]
    assert extract_model_numbers("Voltix charger VX-2210 / VX-2210 (2 pack), 12oz 500ml 6ct") == ["VX2210"]
    assert extract_model_numbers("Plain Coffee, 2 lb") == []
    assert extract_model_numbers("AB12 ab-12") == ["AB12"]
    assert extract_model_numbers(None) == []


# --- matcher on hand-made frames --------------------------------------------------------------

G = {k: _with_check(b) for k, b in {"cola": "004900000044", "tide": "003700087654",
                                    "chips": "002840000123", "cable": "008123456789",
                                    "other": "009999999999"}.items()}


def _products() -> pd.DataFrame:
    return pd.DataFrame({
        "sku": ["P1", "P2", "P3", "P4", "P5"],
        "name": ["Classic Cola Soda", "Original Liquid Laundry Detergent", "Sea Salt Potato Chips",
                 "Braided USB-C Cable", "Sea Salt Potato Chips"],
        "brand": ["Fizzwell", "Tide", "Crunch Valley", "Voltix", "Crunch Valley"],
        "category": ["bev", "home", "snacks", "elec", "snacks"],
        "gtin": [G["cola"], G["tide"], G["chips"], G["cable"], None],
        "mpn": [None, None, None, "VX-2210", None],
        "size": ["12 fl oz", "92 fl oz", "8 oz", "6 ft", "13 oz"],
    })


def _listings() -> pd.DataFrame:
    rows = [
        # retailer, item_id, title, brand, gtin, mpn
        ("walmart", "w1", "Fizzwell Classic Cola Soda 12floz", "Fizzwell", G["cola"][1:], None),  # UPC
        ("walmart", "w2", "Tide Orig Liquid Lndry Det, 92 Fl. Oz.", "Tide", None, None),
        ("walmart", "w3", "Crunch Valley Sea Salt Potato Chips 8oz", None, None, None),  # brand from title
        ("walmart", "w4", "Crunch Valley Sea Salt Potato Chips, 13 Ounce", "Crunch Valley", None, None),
        ("walmart", "w5", "Crunch Valley Sea Salt Potato Chips 5 oz", "Crunch Valley", None, None),  # other size
        ("walmart", "w6", "Voltix Braided USB-C Cable 6 ft", "Voltix", None, "VX-2210"),
        ("walmart", "w7", "Acme Garden Hose 50 ft", "Acme", None, None),  # not ours at all
        ("target", "t1", "Classic Cola Soda - 12 fl oz - Fizzwell", "Fizzwell", None, None),
        ("target", "t2", "Braided USB-C Cable - 6 ft - Voltix", "Voltix", G["other"], "VX-9999"),  # conflicts
        ("target", "t3", "Braided USB-C Cable - 6 ft - Voltix", "Voltix", None, "VX-2210"),
        ("target", "t4", "Sea Salt Potato Chips - 8 oz - Snackwise", "Snackwise", None, None),  # other brand
    ]
    return pd.DataFrame(rows, columns=["retailer", "item_id", "title", "brand", "gtin", "mpn"]).assign(
        url=lambda d: "https://example.test/" + d["item_id"])


TRUTH = pd.DataFrame({
    "retailer": ["walmart"] * 7 + ["target"] * 4,
    "item_id": ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "t1", "t2", "t3", "t4"],
    "sku": ["P1", "P2", "P3", "P5", None, "P4", None, "P1", None, "P4", None],
})


def test_match_listings_hand_made_catalogue():
    m = match_listings(_listings(), _products(), return_features=True)
    assert list(m.columns) == MATCH_COLUMNS + list(WEIGHTS)
    got = m.set_index(["retailer", "item_id"])
    assert got.loc[("walmart", "w1"), "method"] == "gtin" and got.loc[("walmart", "w1"), "score"] == 1.0
    auto = got[got["status"] == "auto"]["sku"].to_dict()
    assert auto == {
        ("walmart", "w1"): "P1", ("walmart", "w2"): "P2", ("walmart", "w3"): "P3",
        ("walmart", "w4"): "P5", ("walmart", "w6"): "P4", ("target", "t1"): "P1",
        ("target", "t3"): "P4",
    }
    assert got.loc[("walmart", "w6"), "model"] == 1.0  # shared MPN
    # the other-size chip bag, the conflicting-GTIN cable and the other brand are never auto
    for key in [("walmart", "w5"), ("target", "t2"), ("target", "t4"), ("walmart", "w7")]:
        assert key not in auto
    res = score_matches(m, TRUTH)
    assert res == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 7, "fp": 0, "fn": 0}
    # one-to-one: no product is matched twice at one retailer
    assert not m.duplicated(["retailer", "sku"]).any()


def test_conflicts_lower_the_score():
    prods = _products()
    base = pd.DataFrame({"retailer": "r", "item_id": ["a"], "title": ["Voltix Braided USB-C Cable 6 ft"],
                         "brand": ["Voltix"]})
    s_ok = match_listings(base, prods, threshold=0.0, review_band=(0.0, 0.0)).iloc[0]
    s_size = match_listings(base.assign(title="Voltix Braided USB-C Cable 10 ft"), prods,
                            threshold=0.0, review_band=(0.0, 0.0)).iloc[0]
    s_gtin = match_listings(base.assign(gtin=G["other"]), prods.assign(gtin=prods["gtin"].where(
        prods["sku"] != "P4", G["chips"][:-1] + "0")), threshold=0.0, review_band=(0.0, 0.0))
    assert s_ok["sku"] == "P4" and s_ok["score"] > 0.9
    assert s_size["sku"] == "P4" and s_size["score"] < s_ok["score"] * 0.6
    # an invalid catalogue GTIN is no evidence either way; a valid different one is a conflict
    assert s_gtin.iloc[0]["score"] == pytest.approx(s_ok["score"], abs=1e-4)
    s_conf = match_listings(base.assign(gtin=G["other"]), prods, threshold=0.0,
                            review_band=(0.0, 0.0)).iloc[0]
    assert s_conf["score"] == pytest.approx(s_ok["score"] * 0.5, abs=1e-3)


def test_review_band_and_threshold():
    m = match_listings(_listings(), _products(), threshold=0.95, review_band=(0.5, 0.95))
    fz = m[m["method"] == "fuzzy"]
    assert (fz["status"] == np.where(fz["score"] >= 0.95, "auto", "review")).all()
    got = m.set_index(["retailer", "item_id"])
    assert got.loc[("walmart", "w2"), "status"] == "review"  # abbreviated title: a human looks
    assert 0.5 <= got.loc[("walmart", "w2"), "score"] < 0.95
    assert got.loc[("walmart", "w1"), "status"] == "auto"
    assert score_matches(m, TRUTH)["tp"] == 6  # the review row does not count
    low = match_listings(_listings(), _products(), threshold=0.3, review_band=(0.3, 0.3))
    assert ("target", "t4") in set(zip(low["retailer"], low["item_id"]))  # other brand, low score
    assert len(low) > len(match_listings(_listings(), _products()))


def test_listings_without_optional_columns():
    lst = _listings()[["retailer", "item_id", "title"]]
    prods = _products()[["sku", "name", "brand", "size"]]
    m = match_listings(lst, prods)
    auto = m[m["status"] == "auto"].set_index(["retailer", "item_id"])["sku"]
    assert auto[("walmart", "w3")] == "P3" and auto[("target", "t1")] == "P1"
    assert (m["method"] == "fuzzy").all()


def test_matcher_input_errors_and_empty_frames():
    with pytest.raises(MatchError, match=r"listings: column\(s\) \['title'\] missing"):
        match_listings(_listings().drop(columns="title"), _products())
    with pytest.raises(MatchError, match="products"):
        match_listings(_listings(), _products().drop(columns="sku"))
    with pytest.raises(PriceIntelError, match="DataFrame"):
        match_listings("listings.csv", _products())
    with pytest.raises(MatchError, match="threshold"):
        match_listings(_listings(), _products(), threshold=1.5, review_band=(0.45, 1.5))
    empty = match_listings(_listings().iloc[:0], _products())
    assert empty.empty and list(empty.columns) == MATCH_COLUMNS
    none = match_listings(_listings().iloc[6:7], _products())  # a garden hose matches nothing
    assert none.empty and list(none.columns) == MATCH_COLUMNS


def test_duplicate_gtin_listings_at_one_retailer_match_once():
    lst = pd.DataFrame({"retailer": ["r", "r", "s"], "item_id": ["1", "2", "3"],
                        "title": ["Cola", "Cola again", "Cola"], "gtin": [G["cola"]] * 3})
    m = match_listings(lst, _products())
    gt = m[m["method"] == "gtin"]
    assert sorted(gt["item_id"]) == ["1", "3"] and set(gt["sku"]) == {"P1"}


def test_score_matches_counts():
    truth = pd.DataFrame({"retailer": ["a", "a", "a", "b"], "item_id": ["1", "2", "3", "4"],
                          "sku": ["S1", "S2", np.nan, "S4"]})
    pred = pd.DataFrame({"retailer": ["a", "a", "a", "b"], "item_id": ["1", "2", "3", "4"],
                         "sku": ["S1", "S9", "S3", "S4"], "status": ["auto", "auto", "auto", "review"]})
    r = score_matches(pred, truth)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 2, 2)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == pytest.approx(1 / 3)
    assert r["f1"] == pytest.approx(1 / 3)
    assert score(pred.iloc[:0], truth)["f1"] == 0.0
    with pytest.raises(MatchError, match="status"):
        score_matches(pred.drop(columns="status"), truth)


# --- demo world -------------------------------------------------------------------------------


def test_demo_world_f1():
    from priceintel.demo import world as demo
    w = demo.generate_world(n_products=30, n_days=60, seed=3)
    m = match_listings(w.listings, w.products)
    r = score_matches(m, w.truth_matches)
    assert r["f1"] >= 0.95, r
    assert set(m["method"]) == {"gtin", "fuzzy"}
    tgt = w.listings[w.listings["retailer"] == "target"]
    assert (m[m["retailer"] == "target"]["method"] == "gtin").sum() == 30 == len(tgt) - (
        w.truth_matches["sku"].isna() & (w.truth_matches["retailer"] == "target")).sum()


@pytest.mark.slow
@pytest.mark.untraced
def test_scale_5000_products_16500_listings():
    """Accuracy at scale; the speed is measured by benchmarks/bench_matching.py, not asserted here."""
    from priceintel.demo import world as demo
    w = demo.generate_world(n_products=5000, n_days=1, seed=11)
    assert len(w.listings) >= 15000
    m = match_listings(w.listings, w.products)
    assert score_matches(m, w.truth_matches)["f1"] >= 0.99
