"""The tournament's backtest as arrays with named axes.

`Backtest.forecasts` has five axes: series (S), window (K), model (M), output (`Out`: the point and the
four native bounds) and step (h, lead time 1..h). Arrays indexed by window have K + 1 rows where a value
exists for the final forecast too: row `k < K` is what is known at cut-off k, row K (`FINAL`) uses every
window.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from priceintel.forecast.columns import BOUNDS, OUTPUTS
from priceintel.forecast.series import Freq

FINAL = -1  #: the `window` label of the final choice, calibration and combination weights


class Out(IntEnum):
    """Output axis of `Backtest.forecasts`, in the order of `columns.OUTPUTS`."""

    MEAN = 0
    LO_80 = 1
    HI_80 = 2
    LO_95 = 3
    HI_95 = 4


BOUND_OUTS = (Out.LO_80, Out.HI_80, Out.LO_95, Out.HI_95)  #: the bound slots, in the order of `columns.BOUNDS`
assert [o.name.lower().replace("_", "-") for o in Out] == [*OUTPUTS[:1], *BOUNDS] and len(BOUND_OUTS) == len(BOUNDS)


@dataclass
class Backtest:
    """Every series' backtest windows, stacked (S series, K windows, M models, h steps)."""

    uids: np.ndarray  #: (S,) series ids, sorted
    forecasts: np.ndarray  #: (S, K, M, Out, h) point and native bounds (NaN where a model failed)
    actual: np.ndarray  #: (S, K, h) the values each window forecasts (NaN past the data)
    ok: np.ndarray  #: (S, K) the series had enough training data at the window's cut-off
    scale: np.ndarray  #: (S, K) MASE scale of the training data
    models: list  #: (M,) model names
    cutoffs: list  #: (K,) cut-off dates
    step_dates: np.ndarray  #: (K, h) the date of every step of every window
    step: int  #: steps between cut-offs
    nonneg: np.ndarray | None = None  #: (S, K) the training history up to the cut-off is non-negative (prices)

    @property
    def n_series(self) -> int:
        return len(self.uids)

    @property
    def n_windows(self) -> int:
        return len(self.cutoffs)

    @property
    def h(self) -> int:
        return int(self.actual.shape[-1])

    @property
    def point(self) -> np.ndarray:
        """(S, K, M, h) point forecasts."""
        return self.forecasts[:, :, :, Out.MEAN, :]

    def errors(self, scaled: bool = False) -> np.ndarray:
        """(S, K, M, h) absolute errors of the points; `scaled`: in MASE points (divided by the scale, NaN
        where the scale is not positive)."""
        err = np.abs(self.point - self.actual[:, :, None, :])
        if not scaled:
            return err
        sc = np.where(np.isfinite(self.scale) & (self.scale > 0), self.scale, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            return err / sc[:, :, None, None]

    def seen_by(self, k: int) -> np.ndarray:
        """(K, h): the steps of earlier windows dated on or before cut-off k (every step for k = K)."""
        K, h = self.n_windows, self.h
        if k == K:
            return np.ones((K, h), bool)
        return (np.arange(K)[:, None] < k) & (self.step_dates <= np.datetime64(self.cutoffs[k], "ns"))

    def finished_by(self, k: int) -> np.ndarray:
        """(K,): the windows whose every step ends on or before cut-off k (every window for k = K)."""
        K, h, step = self.n_windows, self.h, self.step
        if k == K:
            return np.ones(K, bool)
        return np.array([j < k and j * step + h <= k * step for j in range(K)])

    def label(self, k: int) -> int:
        """The `window` label of row k (FINAL for k = K)."""
        return k if k < self.n_windows else FINAL


def stack(jobs: list, models: list, cutoffs: list, h: int, step: int, fq: Freq) -> Backtest:
    """The per-series backtest results (see backtest.series_job), sorted by id, as one Backtest."""
    return Backtest(
        uids=np.array([r["uid"] for r in jobs]),
        forecasts=np.stack([r["out"] for r in jobs]),
        actual=np.stack([r["actual"] for r in jobs]),
        ok=np.stack([r["ok"] for r in jobs]),
        scale=np.stack([r["scale"] for r in jobs]),
        models=list(models),
        cutoffs=list(cutoffs),
        step_dates=np.stack([fq.future(pd.Timestamp(c), h) for c in cutoffs]),
        step=int(step),
        nonneg=np.stack([r["nonneg"] for r in jobs]) if all("nonneg" in r for r in jobs) else None,
    )
