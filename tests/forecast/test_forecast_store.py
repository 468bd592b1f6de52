"""Forecast runs in PostgreSQL: save a tournament, read it back, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from priceintel.forecast import store
from priceintel.forecast import tournament as T
from priceintel.forecast.series import ForecastError


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    ds = pd.date_range("2026-01-01", periods=90, freq="D")
    rows = []
    for i in range(5):
        y = 20 + i + np.cumsum((rng.random(90) < 0.05) * rng.choice([-1, 1], 90))
        rows.append(pd.DataFrame({"unique_id": f"amazon:B{i:03d}", "ds": ds, "y": y.astype(float)}))
    rows.append(pd.DataFrame({"unique_id": "amazon:CONST", "ds": ds, "y": 9.99}))
    return pd.concat(rows, ignore_index=True)


def test_save_and_read_a_run(pg_engine):
    res = T.run_tournament(_frame(), h=14, n_windows=3, n_jobs=1, progress=False)
    run_id = store.save_run(pg_engine, res, name="test-store")
    assert store.latest_run_id(pg_engine, "test-store") == run_id
    run = store.read_run(pg_engine, run_id)
    assert (run["freq"], run["horizon"], run["n_windows"], run["season_length"]) == ("D", 14, 3, 7)
    assert run["code_version"].startswith("0.") and run["n_series"] == 6
    assert "chosen" in run["summary"]["h14"]["models"] and run["params"]["cutoffs"] == res.params["cutoffs"]
    fc = store.read_forecasts(pg_engine, run_id)
    assert set(fc["model"]) == {"chosen", "naive", "seasonal_naive"}
    assert len(fc) == 6 * 14 * 3
    one = fc[(fc["unique_id"] == "amazon:B000") & (fc["model"] == "chosen")]
    assert (one["lo-95"] <= one["lo-80"]).all() and (one["hi-80"] <= one["hi-95"]).all()
    mine = res.forecasts[res.forecasts["unique_id"] == "amazon:B000"]
    assert np.allclose(one["yhat"].to_numpy(), mine["chosen"].to_numpy())
    met = store.read_metrics(pg_engine, run_id, "__all__")
    assert {"naive", "seasonal_naive", "chosen", "auto_ets"} <= set(met["model"])
    assert len(store.read_metrics(pg_engine, run_id)) == len(res.metrics)
    ser = store.read_series(pg_engine, run_id).set_index("unique_id")
    assert ser.loc["amazon:CONST", "is_constant"] and ser["p_change"].between(0, 1).all()
    # a second save is a second run; deleting the run cascades
    run2 = store.save_run(pg_engine, res, name="test-store")
    assert run2 > run_id
    with pg_engine.begin() as c:
        c.execute(sa.text("delete from forecast_run where run_id = :r"), {"r": run2})
        assert c.execute(sa.text("select count(*) from forecast_value where run_id = :r"), {"r": run2}).scalar() == 0


def test_store_errors_name_the_problem(pg_engine):
    with pytest.raises(ForecastError, match="forecast run 987654 does not exist"):
        store.read_run(pg_engine, 987654)
    with pytest.raises(ForecastError, match="expected a TournamentResult"):
        store.save_run(pg_engine, pd.DataFrame())
    assert store.latest_run_id(pg_engine, "no-such-name") is None
