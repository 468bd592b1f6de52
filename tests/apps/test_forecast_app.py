"""The forecasts Voila app in a real headless Chromium, on the pipeline's database."""

import pytest

from _browser import check_on_phone
from priceintel.apps import forecasts as forecast_app
from priceintel.forecast import store as forecast_store

pytestmark = pytest.mark.slow


def test_series_view_from_the_pipeline_run(pipeline_env, on_pipeline_db):
    from priceintel.db.engine import get_engine

    eng = get_engine()
    run_id = forecast_store.latest_run_id(eng, "pipeline")
    assert run_id is not None
    opts = forecast_app.listing_options(eng, run_id)
    assert len(opts) >= int(pipeline_env["n_products"]) and set(opts["retailer"]) <= {"amazon", "walmart", "target"}
    view = forecast_app.series_view(eng, run_id, opts["unique_id"].iloc[0])
    assert len(view["history"]) >= 20 and len(view["forecast"]) == 3 * int(pipeline_env["horizon"])
    assert {"naive", "seasonal_naive", "chosen"} <= set(view["models"]["model"])
    assert view["chosen_model"] in set(view["models"]["model"])
    with pytest.raises(forecast_store.ForecastError, match="not in forecast run"):
        forecast_app.series_view(eng, run_id, "nowhere:0")


def test_forecasts_app_renders_and_switches(apps_voila, browser):
    """One page load at 1440x900 (chart, tables, switching listing), then the same page at 390x844."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{apps_voila}/voila/render/forecasts.ipynb", timeout=120_000)
    page.wait_for_selector("table.backtest tbody tr", timeout=120_000)
    page.wait_for_selector(".fc-detail .js-plotly-plot .scatterlayer .trace", timeout=60_000)
    assert page.locator(".fc-detail .js-plotly-plot .scatterlayer .trace").count() >= 4  # observed, 95%, 80%, forecast
    models = page.locator("table.models").inner_text()
    for m in ("chosen", "naive", "seasonal_naive", "auto_ets"):
        assert m in models
    note = page.locator(".fc-note").inner_text()
    assert "Chosen model" in note and "P(price changes" in note
    # switch retailer, then product: the listing's backtest table changes
    before = page.locator("table.backtest").inner_text() + note
    retailer = page.locator(".fc-detail select").nth(1)
    retailer.select_option(index=retailer.locator("option").count() - 1)
    product = page.locator(".fc-detail select").first
    product.select_option(index=product.locator("option").count() - 1)
    page.wait_for_function(
        "(b) => (document.querySelector('table.backtest').innerText"
        " + document.querySelector('.fc-note').innerText) !== b", arg=before, timeout=60_000)
    check_on_phone(page, "table.backtest tbody tr", ".fc-detail")
