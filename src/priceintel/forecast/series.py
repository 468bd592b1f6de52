"""Input series: the long frame `unique_id, ds, y` (+ regressor columns), its frequency and its cleaning.

`get_freq` reads or infers the sampling frequency (daily, weekly, monthly, quarterly, yearly) as a `Freq`;
`clean_series` puts every series on that calendar grid (duplicates averaged, gaps forward-filled) and
reports gaps, duplicates, constant, short and outlier-laden series.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.forecast.columns import DS, ID, Y

REPORT_COLUMNS = [
    "unique_id",
    "start",
    "end",
    "n_obs",
    "length",
    "n_filled",
    "n_duplicates",
    "too_short",
    "constant",
    "n_outliers",
]


class ForecastError(PriceIntelError):
    """Bad input to a forecasting call; the message names the column, row or argument."""


@dataclass(frozen=True)
class Freq:
    """A regular sampling frequency: fixed steps of `days`, or calendar steps of `months`."""

    alias: str  #: "D", "W", "M", "Q" or "Y"
    days: int = 0
    months: int = 0
    season: int = 1  #: default season length (7 for daily, 52 weekly, 12 monthly, 4 quarterly)
    anchor: str = "start"  #: calendar frequencies: dates at the period "start" or "end"

    def positions(self, ds: pd.Series, origin: pd.Series) -> np.ndarray:
        """Integer step of every date from its series' origin."""
        if self.days:
            return np.floor((ds - origin).dt.days.to_numpy() / self.days + 0.5).astype(np.int64)
        a = ds.dt.year.to_numpy() * 12 + ds.dt.month.to_numpy() - 1
        b = origin.dt.year.to_numpy() * 12 + origin.dt.month.to_numpy() - 1
        return (a - b) // self.months

    def dates(self, origin: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Dates `steps` periods after each origin (datetime64[ns])."""
        start = pd.DatetimeIndex(origin)
        steps = np.asarray(steps, dtype=np.int64)
        if self.days:
            return (start + pd.to_timedelta(steps * self.days, unit="D")).to_numpy()
        per = (start.year.to_numpy() * 12 + start.month.to_numpy() - 1) + steps * self.months
        out = pd.to_datetime({"year": per // 12, "month": per % 12 + 1, "day": 1})
        if self.anchor == "end":
            out = out + pd.offsets.MonthEnd(0)
        return out.to_numpy()

    def future(self, last: pd.Timestamp, h: int) -> np.ndarray:
        """The `h` dates after `last`."""
        return self.dates(np.repeat(np.datetime64(pd.Timestamp(last)), h), np.arange(1, h + 1))


FREQS = {
    "D": Freq("D", days=1, season=7),
    "W": Freq("W", days=7, season=52),
    "M": Freq("M", months=1, season=12),
    "Q": Freq("Q", months=3, season=4),
    "Y": Freq("Y", months=12, season=1),
}
_ALIASES = {
    "D": "D",
    "1D": "D",
    "B": "D",
    "W": "W",
    "7D": "W",
    "M": "M",
    "MS": "M",
    "ME": "M",
    "Q": "Q",
    "QS": "Q",
    "QE": "Q",
    "Y": "Y",
    "A": "Y",
    "YS": "Y",
    "YE": "Y",
    "AS": "Y",
}
#: the usual step in days (low, high) of each frequency that can be inferred from dates
_STEP_DAYS = {"W": (5, 9), "M": (26, 35), "Q": (84, 95), "Y": (360, 370)}


def get_freq(freq: str | Freq | None, ds: pd.Series | None = None) -> Freq:
    """A Freq from an alias ("D", "W", "W-SUN", "M", "MS", "ME", "Q", "Y") or inferred from dates."""
    if isinstance(freq, Freq):
        return freq
    base = _from_alias(freq) if freq is not None else None
    if ds is None or len(ds) == 0:
        return base or FREQS["D"]
    if base is None:
        base = _infer(ds)
    if base.months:
        d = pd.DatetimeIndex(ds.dropna())
        anchor = "end" if len(d) and d.is_month_end.all() and not d.is_month_start.all() else "start"
        base = replace(base, anchor=anchor)
    return base


def _from_alias(freq: str) -> Freq:
    """The Freq of a pandas-style alias."""
    key = str(freq).upper()
    key = "W" if key.startswith("W-") else key
    key = "Q" if key.startswith(("Q-", "QS-", "QE-")) else key
    if key not in _ALIASES:
        raise ForecastError(f"freq={freq!r} is not supported; use one of D, W, M, Q, Y")
    return FREQS[_ALIASES[key]]


def _infer(ds: pd.Series) -> Freq:
    """The Freq whose usual step matches the dates' (daily for steps up to 1.5 days)."""
    days = _median_step_days(ds)
    if days is None or days <= 1.5:
        return FREQS["D"]
    for alias, (lo, hi) in _STEP_DAYS.items():
        if lo <= days <= hi:
            return FREQS[alias]
    raise ForecastError(
        f"cannot infer the frequency of {DS}: the usual step is {days:g} days; pass freq='D', 'W', 'M', 'Q' or 'Y'"
    )


def _median_step_days(ds: pd.Series) -> float | None:
    """Typical (10th-percentile) gap in days between consecutive distinct dates of the same series (`ds` indexed
    by id)."""
    ids = np.zeros(len(ds), int) if isinstance(ds.index, pd.RangeIndex) else ds.index  # plain Series: one series
    frame = pd.DataFrame({"i": ids, "d": pd.to_datetime(ds).to_numpy()}).drop_duplicates().sort_values(["i", "d"])
    gaps = frame.groupby("i")["d"].diff().dt.days.dropna()
    gaps = gaps[gaps > 0]
    return float(gaps.quantile(0.1)) if len(gaps) else None  # low quantile: missing periods only lengthen gaps


def season_length(fq: Freq, given: int | None = None) -> int:
    """Season length: `given`, else the frequency's default; must be a positive integer."""
    if given is None:
        return fq.season
    if not isinstance(given, (int, np.integer)) or given < 1:
        raise ForecastError(f"season_length={given!r} must be a positive integer")
    return int(given)


# --- cleaning --------------------------------------------------------------------------------


def clean_series(
    df: pd.DataFrame, min_length: int | None = None, freq: str | Freq | None = None, mark_imputed: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Regular series (duplicates averaged, gaps forward-filled) and a per-series report.

    With `mark_imputed` the clean frame has a boolean `imputed` column: True where `y` was
    forward-filled (a missing period, not an observed unchanged value).

    The frequency is inferred from the dates unless `freq` is given; it is stored in
    `clean.attrs["freq"]`. Extra numeric columns (regressors such as promo flags) are kept,
    averaged over duplicates and forward-filled like `y`.
    """
    data, extra = _typed(df)
    fq = get_freq(freq, data.set_index(ID)[DS])
    min_length = 2 * max(fq.season, 2) if min_length is None else min_length
    n_obs = data.dropna(subset=[Y]).groupby(ID).size()
    if data.empty:
        empty = pd.DataFrame(
            {ID: pd.Series(dtype=str), DS: pd.Series(dtype="datetime64[ns]"), Y: pd.Series(dtype=float)}
        )
        empty.attrs["freq"] = fq.alias
        return empty, pd.DataFrame(columns=REPORT_COLUMNS)
    full, idx, counts = _on_grid(data, extra, fq, mark_imputed)
    report = _report(full, idx, {"n_obs": n_obs, **counts}, min_length)
    full.attrs["freq"] = fq.alias
    report.attrs["freq"] = fq.alias
    return full, report


def _typed(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame with string ids, midnight dates, float values (rows without a date dropped) and its extra
    (regressor) columns; one-line errors for a missing column or an unparseable date."""
    if not isinstance(df, pd.DataFrame):
        raise ForecastError(f"clean_series: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in (ID, DS, Y) if c not in df.columns]
    if missing:
        raise ForecastError(
            f"clean_series: column(s) {missing} missing; expected long frame [{ID}, {DS}, {Y}], got {list(df.columns)}"
        )
    ds = pd.to_datetime(df[DS], errors="coerce")
    bad = ds.isna() & df[DS].notna()
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise ForecastError(f"clean_series: {DS}={df[DS].iloc[i]!r} in row {df.index[i]!r} is not a date")
    extra = [c for c in df.columns if c not in (ID, DS, Y)]
    data = pd.DataFrame(
        {
            ID: df[ID].astype(str).to_numpy(),
            DS: ds.dt.normalize().to_numpy(),
            Y: pd.to_numeric(df[Y], errors="coerce").astype(float).to_numpy(),
            **{c: pd.to_numeric(df[c], errors="coerce").astype(float).to_numpy() for c in extra},
        }
    ).dropna(subset=[DS])
    return data, extra


def _on_grid(
    data: pd.DataFrame, extra: list[str], fq: Freq, mark_imputed: bool
) -> tuple[pd.DataFrame, pd.Index, dict[str, pd.Series]]:
    """Every series on its full regular grid (built without a Python loop): duplicates averaged, gaps and
    regressors forward-filled, leading gaps dropped. Returns the frame, the series ids and the per-series
    counts `n_filled` and `n_duplicates`."""
    origin = data.groupby(ID)[DS].transform("min")
    data["_pos"] = fq.positions(data[DS], origin)
    data["_origin"] = origin
    dup = data.duplicated([ID, "_pos"], keep="first").groupby(data[ID]).sum()
    data = data.groupby([ID, "_pos"], as_index=False, sort=True).agg(
        {"_origin": "first", Y: "mean", **{c: "mean" for c in extra}}
    )
    span = data.groupby(ID).agg(origin=("_origin", "first"), last=("_pos", "max"))
    lengths = (span["last"] + 1).to_numpy()
    ids = np.repeat(span.index.to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = pd.DataFrame({ID: ids, "_pos": offsets})
    full = grid.merge(data.drop(columns="_origin"), on=[ID, "_pos"], how="left")
    full.insert(1, DS, fq.dates(np.repeat(span["origin"].to_numpy(), lengths), offsets))
    was_nan = full[Y].isna()
    full[[Y, *extra]] = full.groupby(ID)[[Y, *extra]].ffill()
    keep = full[Y].notna()  # leading NaNs have nothing to carry forward
    n_filled = (was_nan & keep).groupby(full[ID]).sum()
    if mark_imputed:
        full["imputed"] = was_nan
    full = full[keep].drop(columns="_pos").reset_index(drop=True)
    return full, span.index, {"n_filled": n_filled, "n_duplicates": dup}


def _report(full: pd.DataFrame, idx: pd.Index, counts: dict[str, pd.Series], min_length: int) -> pd.DataFrame:
    """Per series: span, observed points, length, filled gaps, duplicates, and the too_short / constant /
    outlier flags (an outlier is more than 10 MADs and 50% away from the series' median)."""
    g = full.groupby(ID)[Y]
    med = g.transform("median")
    mad = (full[Y] - med).abs().groupby(full[ID]).transform("median")
    outlier = ((full[Y] - med).abs() > 10 * mad.clip(lower=1e-9)) & ((full[Y] - med).abs() > 0.5 * med.abs())
    report = pd.DataFrame(
        {
            ID: idx.to_numpy(),
            "start": full.groupby(ID)[DS].min().reindex(idx).to_numpy(),
            "end": full.groupby(ID)[DS].max().reindex(idx).to_numpy(),
            "n_obs": counts["n_obs"].reindex(idx, fill_value=0).to_numpy(),
            "length": g.size().reindex(idx, fill_value=0).to_numpy(),
            "n_filled": counts["n_filled"].reindex(idx, fill_value=0).to_numpy().astype(int),
            "n_duplicates": counts["n_duplicates"].reindex(idx, fill_value=0).to_numpy().astype(int),
        }
    )
    report["too_short"] = report["length"] < min_length
    report["constant"] = (g.nunique().reindex(idx, fill_value=0) <= 1).to_numpy()
    report["n_outliers"] = outlier.groupby(full[ID]).sum().reindex(idx, fill_value=0).to_numpy().astype(int)
    return report.reset_index(drop=True)
