"""Price recommendations: constraints, rules, the uncertain curve and the reason text."""

from __future__ import annotations

import numpy as np
import pytest

from priceintel import PriceIntelError
from priceintel.pricing.recommend import (
    MAX_ABOVE_LOWEST,
    MAX_CHANGE,
    Constraints,
    CostPlus,
    MatchLowest,
    PricingError,
    constraints_for,
    current_regular_price,
    feasible_band,
    price_curve,
    recommend,
    recommend_for_model,
)


def test_unconstrained_profit_optimum_is_the_markup_rule():
    r = recommend(-2.0, 0.0, ref_price=20.0, ref_units=100.0, constraints=Constraints(unit_cost=10.0), grid=2001)
    assert r.price == pytest.approx(20.0, abs=0.05)
    assert "cost × e/(1+e) = $20.00" in r.reason
    assert r.units == pytest.approx(100.0, rel=0.01)
    assert r.profit_lo <= r.profit <= r.profit_hi


def test_revenue_objective_and_inelastic_needs_a_ceiling():
    c = Constraints(unit_cost=2.0, current_price=10.0, max_change=0.1)
    r = recommend(-0.5, 0.05, 10.0, 50.0, c, objective="revenue")
    assert r.price == pytest.approx(11.0, abs=0.01) and "ceiling" in r.reason and "max change" in r.reason
    with pytest.raises(PricingError, match="inelastic"):
        recommend(-0.5, 0.05, 10.0, 50.0, Constraints(unit_cost=2.0))


def test_constraints_bind_and_are_named():
    c = Constraints(unit_cost=5.0, current_price=9.0, map_price=8.99, max_change=0.05,
                    competitor_prices={"amazon": 7.5, "walmart": None, "target": 8.2}, max_above_lowest=0.5)
    lo, hi, notes = feasible_band(c)
    assert lo == pytest.approx(8.99) and hi == pytest.approx(9.45) and not notes
    r = recommend(-6.0, 0.2, 9.0, 100.0, c)  # very elastic: wants to go low, MAP stops it
    assert r.price == pytest.approx(8.99) and "MAP" in r.reason and "floor" in r.reason
    # ceiling below a hard floor: the floor wins, and it is said
    c2 = Constraints(unit_cost=10.0, min_margin=0.1, competitor_prices={"amazon": 9.0}, max_above_lowest=0.0)
    lo, hi, notes = feasible_band(c2)
    assert lo == hi == pytest.approx(11.0) and "the floor wins" in notes[0]
    r2 = recommend(-2.0, 0.1, 12.0, 10.0, c2)
    assert r2.price == pytest.approx(11.0) and "floor wins" in r2.reason


def test_rule_layer_match_lowest_with_cost_floor():
    c = Constraints(unit_cost=6.0, current_price=9.0, competitor_prices={"amazon": 8.49, "target": 8.99}, hi=12)
    rule = MatchLowest(undercut=0.0, floor_margin=0.10)
    # model mode: the rule's target is a ceiling; with e=-1.5 the model would like to go up, so it matches
    r = recommend(-1.5, 0.1, 9.0, 100.0, c, rule=rule)
    assert r.price == pytest.approx(8.49) and "amazon" in r.reason
    # rule mode: the rule decides, the model says what that costs
    r2 = recommend(-4.0, 0.1, 9.0, 100.0, c, rule=rule, mode="rule")
    assert r2.price == pytest.approx(8.49) and "The model alone would pick" in r2.reason
    # cost + 10% floor beats a competitor selling below our cost
    cheap = Constraints(unit_cost=8.0, current_price=9.0, competitor_prices={"amazon": 7.0}, hi=12)
    r3 = recommend(-3.0, 0.1, 9.0, 100.0, cheap, rule=rule, mode="rule")
    assert r3.price == pytest.approx(8.8)
    r4 = recommend(-3.0, 0.1, 9.0, 100.0, Constraints(unit_cost=5.0, hi=20), rule=CostPlus(0.3), mode="rule")
    assert r4.price == pytest.approx(6.5)
    nocomp = recommend(-3.0, 0.1, 9.0, 100.0, Constraints(unit_cost=5.0, hi=20), rule=rule)
    assert "no competitor price" in nocomp.reason
    with pytest.raises(PricingError, match="needs a rule"):
        recommend(-3.0, 0.1, 9.0, 100.0, c, mode="rule")


def test_curve_uncertainty_widens_away_from_the_reference_price():
    c = price_curve([5.0, 10.0, 20.0], -2.0, 0.3, 10.0, 100.0, 4.0)
    width = c["units_hi"] - c["units_lo"]
    assert width[1] < 1e-9 < width[0] and width[2] > 0
    c2 = price_curve([10.0], -2.0, 0.3, 10.0, 100.0, 4.0, level_se=0.1)
    assert c2["units_hi"].iloc[0] - c2["units_lo"].iloc[0] > 10
    assert list(c.columns[:2]) == ["price", "units"]


@pytest.mark.parametrize("kw,match", [
    (dict(unit_cost=0), "unit_cost"), (dict(unit_cost=1, max_change=0.1), "current_price"),
    (dict(unit_cost=1, current_price=2, max_change=2), "fraction"), (dict(unit_cost=1, min_margin=-1), "min_margin"),
    (dict(unit_cost="x"), "not a number"),
])
def test_bad_constraints_are_named(kw, match):
    with pytest.raises(PriceIntelError, match=match):
        feasible_band(Constraints(**kw))


def test_bad_inputs():
    c = Constraints(unit_cost=1.0, hi=5)
    with pytest.raises(PricingError, match="objective"):
        recommend(-2, 0.1, 2, 10, c, objective="share")
    with pytest.raises(PricingError, match="not a finite"):
        recommend(np.nan, 0.1, 2, 10, c)
    with pytest.raises(PricingError, match="prices"):
        price_curve([0.0], -2, 0.1, 2, 10, 1)
    with pytest.raises(PricingError, match="ref_units"):
        price_curve([1.0], -2, 0.1, 2, -1, 1)


def test_recommend_for_model_uses_pooled_estimate():
    import pandas as pd

    from priceintel.pricing.elasticity import fit_demand

    rng = np.random.default_rng(0)
    rows = []
    for k, e in enumerate([-2.0, -2.5, -3.0]):
        p = 10 * np.exp(rng.normal(0, 0.1, 120))
        rows.append(pd.DataFrame({"sku": f"s{k}", "cat": "c", "price": p,
                                  "units": np.exp(5 + e * np.log(p / 10) + rng.normal(0, 0.05, 120))}))
    m = fit_demand(pd.concat(rows), "sku", "price", "units", category="cat")
    r = recommend_for_model(m, "s0", Constraints(unit_cost=5.0, current_price=10.0, max_change=0.2))
    assert r.current_price == 10.0 and 9.0 < r.price < 12.0
    assert r.as_dict()["band_lo"] == pytest.approx(8.0)
    with pytest.raises(PricingError, match="no estimate"):
        recommend_for_model(m, "zzz", Constraints(unit_cost=5.0))


def test_current_regular_price_skips_promotions_and_missing_prices():
    import pandas as pd

    ds = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
    sales = pd.DataFrame({
        "sku": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
        "ds": list(ds) * 3,
        # a: promo on the last day; b: promo every day; c: a missing flag (regular) and a missing price last
        "price": [10.0, 11.0, 12.0, 8.0, 5.0, 5.5, 6.0, 4.0, 20.0, 21.0, 22.0, np.nan],
        "promo": [False, False, False, True, True, True, True, True, False, True, None, False],
    }).sample(frac=1.0, random_state=3)  # row order must not matter, only ds
    cur = current_regular_price(sales)
    assert cur.to_dict() == {"a": 12.0, "b": 4.0, "c": 22.0}
    # without a promo column every day is regular
    assert current_regular_price(sales.drop(columns="promo")).to_dict() == {"a": 8.0, "b": 4.0, "c": 22.0}
    other = sales.rename(columns={"sku": "item", "ds": "day", "price": "p", "promo": "deal"})
    assert current_regular_price(other, "item", "p", "day", "deal").to_dict() == cur.to_dict()
    with pytest.raises(PricingError, match=r"no column\(s\) \['ds'\]"):
        current_regular_price(sales.drop(columns="ds"))
    # missing flags as pd.NA (object column) or in pandas' nullable boolean type count as regular days
    for flags in (pd.Series([False, pd.NA, True], dtype=object), pd.Series([False, pd.NA, True], dtype="boolean")):
        d = pd.DataFrame({"sku": "x", "ds": ds[:3], "price": [10.0, 11.0, 8.0], "promo": flags})
        assert current_regular_price(d).to_dict() == {"x": 11.0}
    # regular days without a price: no current price (NaN), never the promotion price
    d = pd.DataFrame({"sku": "y", "ds": ds[:3], "price": [np.nan, np.nan, 8.0], "promo": [False, False, True]})
    assert np.isnan(current_regular_price(d)["y"])


def test_constraints_for_builds_the_apps_band():
    c = constraints_for(5, 10.0, float("nan"), {"amazon": 9.0, "target": 9.6, "walmart": None})
    assert c.map_price is None and c.current_price == 10.0 and c.unit_cost == 5.0
    assert (c.max_change, c.max_above_lowest) == (MAX_CHANGE, MAX_ABOVE_LOWEST) == (0.15, 0.25)
    lo, hi, notes = feasible_band(c)
    assert lo == pytest.approx(8.5) and hi == pytest.approx(9.0 * 1.25) and not notes  # -15%; 25% above amazon
    c2 = constraints_for(5.0, np.float64(10.0), 9.75, None, max_change=0.05, max_above_lowest=0.5)
    assert c2.competitor_prices == {} and c2.lowest_competitor is None
    assert feasible_band(c2)[:2] == pytest.approx((9.75, 10.5))  # MAP floor, +5% ceiling
    # no current price: no max-change band can be drawn, and that is said
    with pytest.raises(PricingError, match="max_change needs current_price"):
        feasible_band(constraints_for(5.0, None))
