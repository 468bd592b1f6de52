"""`priceintel eval forecast FILE.csv`: the tournament's goals on any long CSV of price series."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from priceintel import cli
from priceintel.config import shared_data_dir
from priceintel.forecast import evaluate as FE

OJ = shared_data_dir() / "oj" / "oj_store_week.csv"  # must be there: a missing file fails, never skips


def _run(capsys, *argv) -> dict:
    assert cli.main(list(argv)) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # exactly one JSON line
    return json.loads(out[0])


def _oj(n_series: int) -> pd.DataFrame:
    d = pd.read_csv(OJ)
    d = d.assign(
        unique_id=d["store"].astype(str) + ":" + d["brand"],
        ds=pd.Timestamp("1989-09-14") + pd.to_timedelta((d["week"] - 1) * 7, unit="D"),
    )
    keep = sorted(d["unique_id"].unique())[:n_series]
    return d[d["unique_id"].isin(keep)][["unique_id", "ds", "price", "feat", "deal"]].rename(columns={"price": "y"})


def test_eval_forecast_on_real_weekly_and_monthly_prices(tmp_path: Path, capsys):
    weekly = tmp_path / "oj.csv"
    _oj(20).to_csv(weekly, index=False)
    res = _run(capsys, "eval", "forecast", str(weekly), "--models", "fast", "--regressors", "feat,deal")
    # the default design: weekly, 13 weeks, origins 4 weeks apart, as many as the history allows (<= 8)
    assert (res["freq"], res["h"], res["step"], res["n_windows"]) == ("W", 13, 4, 8)
    assert set(res["by_horizon"]) == {"h4", "h8", "h13"} and "windows 5..8 are scored" in res["split"]
    for v in res["by_horizon"].values():
        # with the planned promo calendar the chosen forecasts beat the last value on the scored windows
        assert v["better_naive"] == "naive" and v["ratio_mae_to_better_naive"] < 0.95 and v["goal_ratio_met"]
        assert 0.70 < v["coverage_80"] < 0.95 and 0.85 < v["coverage_95"] <= 1.0
    assert res["failures"] == 0 and res["interval_shape"] == "symmetric"
    # a goal row per bucket: MAE ratio, coverage and the Winkler score ratio to the better naive, met or not
    for v in res["by_horizon"].values():
        assert v["ratio_winkler_80_to_better_naive"] > 0 and v["ratio_winkler_95_to_better_naive"] > 0
        assert v["goals_met"] == (v["goal_ratio_met"] and v["goal_coverage_met"] and v["goal_winkler_met"])
    assert res["goals_met"] == all(v["goals_met"] for v in res["by_horizon"].values())
    assert "Winkler" in res["goal"] and res["refit"] is True

    # the same prices as monthly means, with other column names
    m = _oj(20).assign(ds=lambda d: d["ds"].dt.to_period("M").dt.to_timestamp())
    m = m.groupby(["unique_id", "ds"], as_index=False)["y"].mean()
    monthly = tmp_path / "m.csv"
    m.rename(columns={"unique_id": "series", "ds": "month", "y": "price"}).to_csv(monthly, index=False)
    res = _run(
        capsys,
        "eval",
        "forecast",
        str(monthly),
        "--id-col",
        "series",
        "--ds-col",
        "month",
        "--y-col",
        "price",
        "--models",
        "fast",
        "--details",
    )
    assert (res["freq"], res["h"], res["step"], res["n_windows"]) == ("M", 3, 1, 8)
    h3 = res["by_horizon"]["h3"]
    assert h3["ratio_mae_to_better_naive"] < 1.0 and h3["chosen_mae"] < h3["better_naive_mae"]
    assert "naive" in res["models_by_horizon"]["h3"] and res["p_change"]["n"] > 0


def test_default_design_follows_the_history():
    df = _oj(3)
    assert FE.default_design(df) == {"freq": "W", "h": 13, "step": 4, "n_windows": 8}
    # a short history leaves room for fewer origins, never fewer than 2
    short = df[df["ds"] < df["ds"].min() + pd.Timedelta(weeks=80)]
    d = FE.default_design(short)
    assert 2 <= d["n_windows"] < 8
    assert FE.default_design(df, h=6, step=2, n_windows=3) == {"freq": "W", "h": 6, "step": 2, "n_windows": 3}


def test_eval_forecast_errors_name_the_file_and_the_problem(tmp_path: Path, capsys):
    cases = {
        "nofile": (None, "no such file"),
        "cols.csv": ("a,b\n1,2\n", "column(s) ['unique_id', 'ds', 'y'] not found"),
        "date.csv": ("unique_id,ds,y\ns,2024-01-01,1.0\ns,yesterday,2.0\n", "row 3: ds='yesterday' is not a date"),
        "num.csv": ("unique_id,ds,y\ns,2024-01-01,1.0\ns,2024-01-02,$2\n", "row 3: y='$2' is not a number"),
        "empty.csv": ("", "not a readable CSV"),
    }
    for name, (text, msg) in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        assert cli.main(["eval", "forecast", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and str(path) in err and msg in err and len(err.splitlines()) == 1
    with pytest.raises(FE.ForecastError, match="models='all'"):
        FE.evaluate_frame(_oj(2), models="all")
