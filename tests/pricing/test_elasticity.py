"""Elasticity fits on simulated panels with known truth and on Dominick's orange juice."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from priceintel import PriceIntelError
from priceintel.config import shared_data_dir
from priceintel.pricing.panel import ElasticityError, ElasticityWarning
from priceintel.pricing.loglog import (
    fit_loglog,
    fit_pooled,
    optimal_price,
    recommend_price,
    response_curve,
    with_day_of_week,
)

OJ = shared_data_dir() / "oj" / "oj.csv"


def _panel(elasticities: dict, n: int = 200, seed: int = 0, dow: bool = True) -> pd.DataFrame:
    """Daily panel with known own-price elasticities, a day-of-week effect and a promo control."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, (sku, e) in enumerate(elasticities.items()):
        ds = pd.date_range("2026-01-01", periods=n, freq="D")
        base = 5.0 + i
        promo = (rng.random(n) < 0.15).astype(int)
        price = base * np.exp(rng.normal(0, 0.12, n)) * np.where(promo == 1, 0.85, 1.0)
        dow_eff = np.array([0.0, -0.1, -0.1, 0.0, 0.15, 0.35, 0.25])[ds.dayofweek] if dow else 0
        logq = 3.0 + e * np.log(price / base) + 0.3 * promo + dow_eff + rng.normal(0, 0.15, n)
        frames.append(pd.DataFrame({
            "item": sku, "day": ds, "p": price.round(2), "q": np.round(np.exp(logq)), "promo": promo,
        }))
    return pd.concat(frames, ignore_index=True)


def test_per_entity_recovery_with_controls_and_dow_fixed_effects():
    truth = {"a": -0.8, "b": -1.8, "c": -3.0}
    panel = with_day_of_week(_panel(truth), date="day")
    res = fit_loglog(panel, entity="item", price="p", quantity="q",
                     controls=["promo"], fixed_effects=["dow"])
    assert list(res.columns[:3]) == ["item", "elasticity", "se"]
    assert res["identified"].all()
    for _, row in res.iterrows():
        assert row["elasticity"] == pytest.approx(truth[row["item"]], abs=0.2)
        assert row["ci_lo"] < truth[row["item"]] < row["ci_hi"]
        assert 0 < row["se"] < 0.2
        assert row["n"] == 200
        assert 0.05 < row["price_cv"] < 0.3


def test_zero_and_missing_quantities_are_dropped_with_a_note():
    panel = _panel({"a": -2.0}, n=120)
    panel.loc[:4, "q"] = 0
    panel.loc[5:6, "q"] = np.nan
    panel.loc[7, "p"] = -1.0
    res = fit_loglog(panel, entity="item", price="p", quantity="q", controls=["promo"]).iloc[0]
    assert res["n"] == 120 - 8
    assert "5 row(s) with zero quantity" in res["note"]
    assert "3 row(s) with missing/non-positive" in res["note"]
    assert res["identified"]


def test_flat_price_is_flagged_not_hidden():
    panel = _panel({"a": -2.0, "flat": -2.0}, n=80)
    panel.loc[panel["item"] == "flat", "p"] = 4.99
    res = fit_loglog(panel, entity="item", price="p", quantity="q").set_index("item")
    assert not res.loc["flat", "identified"]
    assert np.isnan(res.loc["flat", "elasticity"])
    assert "price variation too small to identify" in res.loc["flat", "note"]
    assert res.loc["a", "identified"]


def test_too_few_rows_collinear_and_positive_slope_notes():
    rng = np.random.default_rng(1)
    tiny = pd.DataFrame({"e": "t", "p": [1.0, 2.0, 3.0], "q": [3.0, 2.0, 1.0]})
    p = np.exp(rng.normal(0, 0.2, 50))
    coll = pd.DataFrame({"e": "c", "p": p, "q": np.exp(rng.normal(0, 0.1, 50)), "lp": np.log(p)})
    pos = pd.DataFrame({"e": "g", "p": p, "q": p ** 1.5 * np.exp(rng.normal(0, 0.05, 50))})
    empty = pd.DataFrame({"e": "z", "p": [1.0, 2.0], "q": [0.0, 0.0]})
    res = fit_loglog(pd.concat([tiny, coll, pos, empty]).fillna({"lp": 0.0}), entity="e",
                     price="p", quantity="q").set_index("e")
    assert "too few observations" in res.loc["t", "note"]
    assert res.loc["g", "identified"] and res.loc["g", "elasticity"] > 1.3
    assert "non-negative elasticity" in res.loc["g", "note"]
    assert "no usable rows" in res.loc["z", "note"]
    res2 = fit_loglog(coll, entity="e", price="p", quantity="q", controls=["lp"])
    assert "collinear" in res2.loc[0, "note"] and not res2.loc[0, "identified"]


def test_cluster_robust_and_categorical_controls():
    panel = _panel({"a": -1.5}, n=300, dow=False)
    panel["week"] = panel["day"].dt.isocalendar().week.astype(int)
    panel["channel"] = np.where(np.arange(len(panel)) % 2 == 0, "web", "store")
    res = fit_loglog(panel, entity="item", price="p", quantity="q",
                     controls=["promo", "channel"], cluster="week").iloc[0]
    assert res["identified"] and res["elasticity"] == pytest.approx(-1.5, abs=0.25)
    assert res["ci_lo"] < -1.5 < res["ci_hi"]


def test_pooled_recovers_common_elasticity_with_clustered_se():
    panel = _panel({s: -2.2 for s in "abcdef"}, n=120, seed=5)
    panel = with_day_of_week(panel, "day")
    out = fit_pooled(panel, price="p", quantity="q", controls=["promo"],
                     fixed_effects=["item", "dow"], cluster="item")
    assert out["elasticity"] == pytest.approx(-2.2, abs=0.1)
    assert out["cov_type"] == "cluster" and out["n_clusters"] == 6
    assert out["ci_lo"] < -2.2 < out["ci_hi"]
    hc1 = fit_pooled(panel, price="p", quantity="q", controls=["promo"], fixed_effects=["item", "dow"])
    assert hc1["cov_type"] == "HC1" and hc1["elasticity"] == pytest.approx(out["elasticity"])


def test_pooled_errors_name_the_problem():
    panel = _panel({"a": -2.0}, n=30)
    with pytest.raises(ElasticityError, match="'units'"):
        fit_pooled(panel, price="p")
    with pytest.raises(PriceIntelError, match="DataFrame"):
        fit_loglog([1, 2], entity="item")
    flat = panel.assign(p=3.0)
    with pytest.raises(ElasticityError, match="too small"):
        fit_pooled(flat, price="p", quantity="q")
    with pytest.raises(ElasticityError, match="no rows"):
        fit_pooled(panel.assign(q=0), price="p", quantity="q")
    with pytest.raises(ElasticityError, match="parameters"):
        fit_pooled(panel.head(3), price="p", quantity="q", fixed_effects=["day"])


def test_dominicks_orange_juice_pooled_elasticity_matches_published():
    oj = pd.read_csv(OJ)
    out = fit_pooled(oj, price="price", quantity="sales", fixed_effects=["brand"])
    assert out["elasticity"] == pytest.approx(-3.13869, abs=1e-4)
    assert out["n"] == 28947
    by_brand = fit_loglog(oj, entity="brand", price="price", quantity="sales", controls=["feat"])
    assert set(by_brand["brand"]) == {"dominicks", "minute.maid", "tropicana"}
    assert (by_brand["elasticity"] < -1).all() and by_brand["identified"].all()


def test_optimal_price_markup_rule_bounds_and_inelastic_fallback():
    assert optimal_price(-2.0, 10.0) == pytest.approx(20.0)
    assert optimal_price(-3.0, 6.0) == pytest.approx(9.0)
    assert optimal_price(-2.0, 10.0, bounds=(5, 15)) == 15
    assert optimal_price(-11.0, 10.0, bounds=(12, 30)) == 12
    with pytest.warns(ElasticityWarning, match="inelastic"):
        assert optimal_price(-0.5, 10.0, bounds=(8, 25)) == 25
    assert "inelastic" in recommend_price(-1.0, 3.0, (1, 9)).note
    with pytest.raises(ElasticityError, match="upper bound is required"):
        optimal_price(-0.7, 10.0)
    with pytest.raises(ElasticityError, match="unit_cost"):
        optimal_price(-2.0, 0)
    with pytest.raises(ElasticityError, match="not a finite"):
        optimal_price(float("nan"), 1.0)
    with pytest.raises(ElasticityError, match="bounds"):
        optimal_price(-2.0, 1.0, bounds=(5, 2))


def test_response_curve_peaks_at_optimal_price():
    prices = np.linspace(11, 40, 2901)
    curve = response_curve(-2.0, ref_price=20.0, ref_units=100.0, unit_cost=10.0, prices=prices)
    assert list(curve.columns) == ["price", "units", "revenue", "profit"]
    assert curve.loc[curve["price"].sub(20).abs().idxmin(), "units"] == pytest.approx(100.0)
    assert curve.loc[curve["profit"].idxmax(), "price"] == pytest.approx(optimal_price(-2.0, 10.0), abs=0.02)
    assert np.all(np.diff(curve["units"]) < 0)
    with pytest.raises(ElasticityError):
        response_curve(-2.0, 0, 1, 1, [1.0])
    with pytest.raises(ElasticityError):
        response_curve(-2.0, 1, 1, 1, [0.0, 1.0])


def test_demo_world_elasticity_recovery():
    from priceintel.demo import world as demo
    w = demo.generate_world(n_products=30, n_days=60, seed=3)
    # demand also reacts to the cheapest competitor: build that control from the matched prices
    comp = (w.prices.merge(w.truth_matches.dropna(subset=["sku"]), on=["retailer", "item_id"])
            .groupby(["sku", "ds"])["price"].min().rename("comp_min").reset_index())
    panel = with_day_of_week(w.sales, "ds").merge(comp, on=["sku", "ds"], how="left")
    panel["comp_min"] = panel.groupby("sku")["comp_min"].transform(lambda s: s.fillna(s.median()))
    panel["log_comp"] = np.log(panel["comp_min"])
    res = fit_loglog(panel, controls=["log_comp"], fixed_effects=["dow"]).merge(
        w.truth_elasticities, on="sku")
    assert len(res) == 30 and res["identified"].all()
    err = (res["elasticity"] - res["own_elasticity"]).abs()
    assert err.mean() < 0.2 and err.max() < 0.6, err.describe()
    covered = (res["ci_lo"] <= res["own_elasticity"]) & (res["own_elasticity"] <= res["ci_hi"])
    assert covered.mean() >= 0.8
    pooled = fit_pooled(panel, controls=["log_comp"], fixed_effects=["sku", "dow"], cluster="sku")
    assert pooled["elasticity"] == pytest.approx(w.truth_elasticities["own_elasticity"].mean(), abs=0.2)
    # without the competitor control the estimates are rougher but still in the right place
    plain = fit_loglog(panel, fixed_effects=["dow"]).merge(w.truth_elasticities, on="sku")
    assert (plain["elasticity"] - plain["own_elasticity"]).abs().mean() < 0.3
