"""Forecast runs in PostgreSQL (migration 0003): save a tournament, read forecasts and metrics back.

This module is the one place that maps the frames' names to the database's: a frame's `<model>`,
`<model>-lo-80`, … (`columns.BOUNDS`) are `yhat`, `"lo-80"`, … in `forecast_value` (the same bound names,
quoted in SQL: migration 0009), and the metrics frame's
columns are stored in `forecast_metric` except the native bounds' coverage (`coverage_raw_*`).
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from priceintel import config
from priceintel.db.load import TENANT_ONCE
from priceintel.forecast.arrays import FINAL
from priceintel.forecast.columns import (
    BOUNDS,
    CHOSEN,
    DS,
    ID,
    METRICS,
    OVERALL,  # noqa: F401 (the forecasts app reads OVERALL from here)
    RAW,
    column,
)
from priceintel.forecast.models import NAIVE_BASELINES
from priceintel.forecast.series import ForecastError
from priceintel.forecast.tournament import TournamentResult
from priceintel.items import to_json

#: frame name -> forecast_value column: the point, then every bound under its own name ("lo-80")
VALUE_NAMES: dict[str | None, str] = {None: "yhat", **{b: b for b in BOUNDS}}
VALUE_COLUMNS = list(VALUE_NAMES.values())  #: yhat, lo-80, hi-80, lo-95, hi-95


def sql_names(cols: list[str]) -> str:
    """Column list for SQL, quoting names that are not plain identifiers ("lo-80")."""
    return ", ".join(c if c.isidentifier() else f'"{c}"' for c in cols)


#: the metrics stored in forecast_metric: every metric but the native bounds' coverage
METRIC_COLUMNS = [m for m in METRICS if not m.startswith(f"coverage_{RAW}_")]


def _copy(conn, table: str, cols: list[str], frame: pd.DataFrame) -> int:
    """Add the rows of `frame[cols]` to `table` (NaN -> NULL): COPY into a temporary table of the same columns,
    then INSERT (PostgreSQL refuses COPY into a table under row-level security; the INSERT takes the tenant)."""
    data = frame[cols].astype(object).where(frame[cols].notna(), None)
    names = sql_names(cols)
    stg = f"stg_{table}"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{stg}")
    conn.exec_driver_sql(f"CREATE TEMP TABLE {stg} ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA")
    raw = conn.connection.driver_connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {stg} ({names}) FROM STDIN") as copy:
            for row in data.itertuples(index=False, name=None):
                copy.write_row(row)
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}, tenant_id) SELECT {names}, {TENANT_ONCE} FROM {stg}")
    conn.exec_driver_sql(f"DROP TABLE {stg}")
    return len(frame)


def save_run(engine: sa.Engine, result: TournamentResult, name: str = "pipeline") -> int:
    """Store a tournament (run, per-series choices, forecasts, metrics) in one transaction; return run_id."""
    if not isinstance(result, TournamentResult):
        raise ForecastError(f"save_run: expected a TournamentResult, got {type(result).__name__}")
    p = result.params
    fc = result.forecasts
    final = result.choices[result.choices["window"] == FINAL]
    rep = result.report.set_index(ID) if len(result.report) else pd.DataFrame()
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.text(
                "INSERT INTO forecast_run (name, freq, horizon, n_windows, step, season_length, models, params, "
                "summary, timing, n_series, code_version) VALUES (:name, :freq, :h, :nw, :step, :season, "
                "CAST(:models AS jsonb), CAST(:params AS jsonb), CAST(:summary AS jsonb), CAST(:timing AS jsonb), "
                ":n, :v) RETURNING run_id"
            ),
            {
                "name": name,
                "freq": p["freq"],
                "h": p["h"],
                "nw": p["n_windows"],
                "step": p["step"],
                "season": p["season_length"],
                "models": to_json(p["models"]),
                "params": to_json(p),
                "summary": to_json(result.summary()),
                "timing": to_json(result.timing),
                "n": int(final[ID].nunique()),
                "v": config.code_version(),
            },
        ).scalar_one()
        series = final[[ID, "model"]].rename(columns={"model": "chosen_model"}).copy()
        pc = fc.groupby(ID)["p_change"].first() if len(fc) else pd.Series(dtype=float)
        series["p_change"] = series[ID].map(pc)
        series["length"] = series[ID].map(rep["length"]) if len(rep) else None
        series["is_constant"] = series[ID].map(rep["constant"]) if len(rep) else None
        series["run_id"] = run_id
        _copy(conn, "forecast_series", ["run_id", ID, "chosen_model", "p_change", "length", "is_constant"], series)
        parts = []
        for m in (CHOSEN, *NAIVE_BASELINES):
            if m not in fc.columns:
                continue
            values = {db: fc[column(m, name)] for name, db in VALUE_NAMES.items()}
            parts.append(pd.DataFrame({"run_id": run_id, ID: fc[ID], "model": m, "ds": fc[DS].dt.date, **values}))
        if parts:
            _copy(conn, "forecast_value", ["run_id", ID, "model", "ds", *VALUE_COLUMNS], pd.concat(parts))
        met = result.metrics.assign(run_id=run_id)
        _copy(conn, "forecast_metric", ["run_id", ID, "model", "horizon", *METRIC_COLUMNS], met)
    return int(run_id)


def latest_run_id(engine: sa.Engine, name: str | None = None) -> int | None:
    """The newest run (optionally of one name), or None when there is none."""
    sql = "SELECT max(run_id) FROM forecast_run" + (" WHERE name = :name" if name else "")
    with engine.connect() as conn:
        v = conn.execute(sa.text(sql), {"name": name} if name else {}).scalar()
    return None if v is None else int(v)


def read_run(engine: sa.Engine, run_id: int) -> dict:
    """The run's row as a dict (raises ForecastError naming the id when it does not exist)."""
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM forecast_run WHERE run_id = :r"), {"r": run_id}).mappings().first()
    if row is None:
        raise ForecastError(f"forecast run {run_id!r} does not exist in table forecast_run")
    return dict(row)


def _read_run(engine: sa.Engine, table: str, columns: str, run_id: int, unique_id: str | None, order: str):
    """Rows of one stored run (and one series) of `table`, ordered."""
    sql = f"SELECT {columns} FROM {table} WHERE run_id = %(r)s"
    params: dict = {"r": run_id}
    if unique_id is not None:
        sql += " AND unique_id = %(u)s"
        params["u"] = unique_id
    return pd.read_sql(f"{sql} ORDER BY {order}", engine, params=params)


def read_forecasts(engine: sa.Engine, run_id: int, unique_id: str | None = None) -> pd.DataFrame:
    """Stored future values (one row per series, model and date)."""
    cols = f"unique_id, model, ds, {sql_names(VALUE_COLUMNS)}"
    df = _read_run(engine, "forecast_value", cols, run_id, unique_id, "unique_id, model, ds")
    df["ds"] = pd.to_datetime(df["ds"])
    return df


def read_metrics(engine: sa.Engine, run_id: int, unique_id: str | None = None) -> pd.DataFrame:
    """Stored backtest metrics (unique_id = '__all__' for the overall rows)."""
    cols = f"unique_id, model, horizon, {', '.join(METRIC_COLUMNS)}"
    return _read_run(engine, "forecast_metric", cols, run_id, unique_id, "unique_id, horizon, mae")


def read_series(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    """Per-series choice and change probability of a run."""
    return pd.read_sql(
        "SELECT unique_id, chosen_model, p_change, length, is_constant FROM forecast_series "
        "WHERE run_id = %(r)s ORDER BY unique_id",
        engine,
        params={"r": run_id},
    )
