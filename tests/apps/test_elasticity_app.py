"""The elasticity app's callback logic without a browser (in Chromium: tests/apps/test_dashboard_apps.py)."""

from __future__ import annotations

import pytest

from priceintel.demo import world as demo
from priceintel.pricing import elasticity
from priceintel.pricing import recommend as pricing
from priceintel.apps import elasticity as ea


def _offline_panel():
    w = demo.generate_world(n_products=10, n_days=28, seed=7)
    comp = w.prices.merge(w.truth_matches.dropna(subset=["sku"]), on=["retailer", "item_id"])
    sales = w.sales.merge(w.products[["sku", "name", "brand", "category", "unit_cost", "map_price"]], on="sku")
    panel, _ = elasticity.with_competitor_prices(sales, comp[["sku", "ds", "retailer", "price"]])
    return panel


def test_explorer_callback_updates_whatif_recommendation_and_table():
    panel = _offline_panel()
    model = ea.fit_panel(panel)
    x = ea.ElasticityExplorer(panel, model)
    assert "Recommended price" in x.reco.value and "Demand is" in x.reco.value
    assert 'class="elasticity-table"' in x.table.value and 'class="selected"' in x.table.value
    before = x.whatif.value
    x.price_box.value = round(x.price_box.value * 1.1, 2)
    assert x.whatif.value != before and "What if the price were" in x.whatif.value
    x.rule.value = True
    assert "match the lowest competitor" in x.reco.value
    x.objective.value = "revenue"
    x.picker.value = x.picker.options[-1][1]
    assert x.slider.min < x.slider.value < x.slider.max
    st = ea.product_state(panel, x.picker.value)
    assert st["unit_cost"] > 0 and st["competitors"]
    # the app prices under the shared constraints, from our last non-promotion price
    g = panel[(panel["sku"] == x.picker.value) & ~panel["promo"]].sort_values("ds")
    assert st["current_price"] == g["price"].iloc[-1]
    rec = ea.recommendation_for(model, panel, x.picker.value)
    c = pricing.constraints_for(st["unit_cost"], st["current_price"], st["map_price"], st["competitors"])
    assert rec.band == pytest.approx(pricing.feasible_band(c)[:2])
    assert rec.band[1] <= min(st["competitors"].values()) * (1 + pricing.MAX_ABOVE_LOWEST) + 1e-9
