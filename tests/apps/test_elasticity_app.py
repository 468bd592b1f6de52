"""The elasticity Voila app in headless Chromium, plus its callback logic without a browser."""

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


@pytest.mark.slow
def test_elasticity_app_in_chromium(apps_voila, browser):
    """One page load at 1440x900 (table, recommendation, what-if price), then the same page at 390x844."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{apps_voila}/voila/render/elasticity.ipynb", timeout=120_000)
    page.wait_for_selector("table.elasticity-table tbody tr", timeout=120_000)
    page.wait_for_selector(".el-detail .js-plotly-plot .scatterlayer .trace", timeout=60_000)
    assert page.locator("table.elasticity-table tbody tr").count() >= 5
    assert "[" in page.locator("table.elasticity-table tbody tr").first.inner_text()  # intervals shown
    reco = page.locator(".recommendation").inner_text()
    assert "Recommended price: $" in reco and "elasticity" in reco
    whatif = page.locator(".whatif")
    before = whatif.inner_text()
    box = page.locator(".el-detail .widget-text input[type=number]").first
    current = float(box.input_value())
    box.fill(f"{current * 1.2:.2f}")
    box.press("Enter")
    page.wait_for_function("(b) => document.querySelector('.whatif').innerText !== b", arg=before,
                           timeout=60_000)
    assert f"{current * 1.2:.2f}" in whatif.inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    assert page.locator(".recommendation").is_visible()
    page.wait_for_function("() => document.querySelector('.el-detail .js-plotly-plot .main-svg')"
                           ".getBoundingClientRect().width <= 390", timeout=15_000)  # the chart follows the phone
    page.close()
