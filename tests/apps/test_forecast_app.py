"""The forecasts app's views on the pipeline's database (in Chromium: tests/apps/test_dashboard_apps.py)."""

import pytest

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
