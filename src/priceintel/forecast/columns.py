"""Names shared by every forecast frame: the long-frame keys, the interval bounds and the metric columns.

A model's forecast is a point and four bounds. In a returned dict the keys are `mean`, `lo-80`, `hi-80`,
`lo-95`, `hi-95` (the suffixes statsforecast uses); in a frame the columns are `<model>`,
`<model>-lo-80`, `<model>-hi-80`, `<model>-lo-95`, `<model>-hi-95` (and `<model>-lo-80-raw`, … for the
native bounds before conformal calibration). The database (`forecast_value`, `mv_app_forecasts`) and
the apps and exports use the same bound names.
"""

from __future__ import annotations

from priceintel.items import FORECAST_ID, FORECAST_TARGET, FORECAST_TIME

ID, DS, Y = FORECAST_ID, FORECAST_TIME, FORECAST_TARGET
OVERALL = "__all__"  #: unique_id of the overall rows in a metrics frame
CHOSEN = "chosen"  #: the column of each series' chosen model

LEVELS = (80, 95)  #: interval levels (%) of every forecast
POINT = "mean"  #: key of the point forecast in a model's result dict
RAW = "raw"  #: suffix of the native (uncalibrated) bounds in the backtest frame
SCALE = "_scale"  #: backtest frame: the series' MASE scale (in-sample seasonal-naive MAE) at the window's cut-off


def bound(side: str, level: int) -> str:
    """Suffix of one interval bound: bound("lo", 80) == "lo-80"."""
    return f"{side}-{level}"


def bounds(levels=LEVELS) -> tuple[str, ...]:
    """Every bound suffix at `levels`, lower then upper per level: ("lo-80", "hi-80", "lo-95", "hi-95")."""
    return tuple(bound(side, lv) for lv in levels for side in ("lo", "hi"))


BOUNDS = bounds()  #: ("lo-80", "hi-80", "lo-95", "hi-95")
OUTPUTS = (POINT, *BOUNDS)  #: what every model returns, in this order


def column(model: str, suffix: str | None = None, raw: bool = False) -> str:
    """Frame column of a model's point (`suffix` None) or bound: column("naive", "lo-80") == "naive-lo-80"."""
    name = model if suffix is None else f"{model}-{suffix}"
    return f"{name}-{RAW}" if raw else name


def interval_columns(model: str, levels=LEVELS) -> list[str]:
    """The point and bound columns of one model: [model, model-lo-80, model-hi-80, model-lo-95, model-hi-95]."""
    return [model, *(column(model, b) for b in bounds(levels))]


#: metric columns of every metrics frame, in order (`coverage_raw_*`: the native bounds' coverage)
METRICS = [
    "n",
    "mae",
    "rmse",
    "smape",
    "mase",
    *(f"coverage_{lv}" for lv in LEVELS),
    *(f"width_{lv}" for lv in LEVELS),
    *(f"winkler_{lv}" for lv in LEVELS),
    *(f"coverage_{RAW}_{lv}" for lv in LEVELS),
]
