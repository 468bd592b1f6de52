"""A fitted log-log demand model (`fit_demand`'s result): calendar and trend features, the named design
matrix, per-entity fits, prediction with intervals, and empirical-Bayes partial pooling of the estimates."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from priceintel.pricing.panel import ElasticityError, check_columns

#: calendar features `fit_demand` can derive from a datetime period column
CALENDAR_FEATURES = ("dow", "month", "week_of_year")


def add_calendar(
    panel: pd.DataFrame, period: str, features: Sequence[str] = ("dow",), trend: bool = False
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Copy of `panel` with calendar dummies and a trend; returns (frame, new FE cols, new controls)."""
    check_columns(panel, [period], "add_calendar")
    out = panel.copy()
    fes, ctrls = [], []
    if features:
        unknown = [f for f in features if f not in CALENDAR_FEATURES]
        if unknown:
            raise ElasticityError(f"add_calendar: unknown calendar feature(s) {unknown}; known: {CALENDAR_FEATURES}")
        if not pd.api.types.is_datetime64_any_dtype(out[period]):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out[period] = pd.to_datetime(out[period])
            except (ValueError, TypeError):
                raise ElasticityError(
                    f"add_calendar: period column {period!r} is not a date, so calendar features "
                    f"{list(features)} cannot be derived (pass calendar=() for integer periods)"
                ) from None
        ts = out[period]
        for f in features:
            name = f"_{f}"
            out[name] = {
                "dow": ts.dt.dayofweek,
                "month": ts.dt.month,
                "week_of_year": ts.dt.isocalendar().week.astype(int),
            }[f]
            fes.append(name)
    if trend:
        p = out[period]
        if pd.api.types.is_datetime64_any_dtype(p):
            t = (p - p.min()).dt.days.astype(float)
        else:
            t = pd.to_numeric(p, errors="coerce").astype(float)
            if t.isna().any():
                raise ElasticityError(f"add_calendar: period column {period!r} is neither a date nor numeric")
            t = t - t.min()
        span = float(t.max()) or 1.0
        out["_trend"] = t / span
        ctrls.append("_trend")
    return out, fes, ctrls


def design_named(
    df: pd.DataFrame,
    price: str,
    controls: Sequence[str],
    log_controls: Sequence[str],
    fixed_effects: Sequence[str],
    interactions: Sequence[str],
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Design matrix with stable names; with `columns` it is aligned to a fitted model's columns."""
    lp = np.log(df[price].astype(float)).rename("log_price")
    parts = [pd.Series(1.0, index=df.index, name="const"), lp]
    for z in interactions:
        parts.append((lp * df[z].astype(float)).rename(f"log_price:{z}"))
    for c in log_controls:
        parts.append(np.log(df[c].astype(float)).rename(f"log({c})"))
    for c in controls:
        col = df[c]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            parts.append(col.astype(float).rename(c))
        else:
            parts.append(pd.get_dummies(col.astype(str), prefix=c, prefix_sep="=", dtype=float))
    for fe in fixed_effects:
        parts.append(pd.get_dummies(df[fe].astype(str), prefix=fe, prefix_sep="=", dtype=float))
    X = pd.concat(parts, axis=1)
    if columns is not None:
        return X.reindex(columns=columns, fill_value=0.0)
    # drop one level of every dummy block (the first in sort order) and constant columns
    drop = []
    for block in [
        *[c for c in controls if not (pd.api.types.is_bool_dtype(df[c]) or pd.api.types.is_numeric_dtype(df[c]))],
        *fixed_effects,
    ]:
        cols = sorted(c for c in X.columns if c.startswith(f"{block}="))
        drop += cols[:1]
    X = X.drop(columns=drop)
    fixed = {"const", "log_price"}
    keep = X.columns.isin(list(fixed)) | (X.std(axis=0, ddof=0).to_numpy() > 0)
    return X.loc[:, keep]


@dataclass
class EntityFit:
    """One entity's fitted demand equation (enough to predict and to explain)."""

    columns: list
    params: np.ndarray
    cov: np.ndarray
    method: str
    residuals: np.ndarray  # log-scale residuals (ols) for the smearing estimate and predictive draws
    ref_price: float
    ref_units: float
    n: int


@dataclass
class DemandModel:
    """Per-entity log-log demand models fitted by `fit_demand`: estimates, prediction, curves."""

    spec: dict
    fits: dict
    estimates: pd.DataFrame

    @property
    def entity(self) -> str:
        """Name of the entity column."""
        return self.spec["entity"]

    def _prepare(self, newdata: pd.DataFrame) -> pd.DataFrame:
        """Derive calendar/trend columns for new rows the same way as in training."""
        s = self.spec
        df = newdata.copy()
        if s["calendar"] or s["trend"]:
            check_columns(df, [s["period"]], "DemandModel.predict")
            df, _, _ = add_calendar(df, s["period"], s["calendar"], False)
            if s["trend"]:
                p = df[s["period"]]
                t = (
                    (p - s["trend_origin"]).dt.days.astype(float)
                    if pd.api.types.is_datetime64_any_dtype(p)
                    else pd.to_numeric(p).astype(float) - s["trend_origin"]
                )
                df["_trend"] = t / s["trend_span"]
        return df

    def predict(self, newdata: pd.DataFrame, level: float = 0.9, draws: int = 500, seed: int = 0) -> pd.DataFrame:
        """Expected units per row of `newdata` (entity, price, controls) with a `level` prediction interval."""
        s = self.spec
        df = self._prepare(newdata)
        need = [s["entity"], s["price"], *s["controls"], *s["log_controls"], *s["raw_fe"], *s["interactions"]]
        check_columns(df, need, "DemandModel.predict")
        p = pd.to_numeric(df[s["price"]], errors="coerce")
        if not (np.isfinite(p) & (p > 0)).all():
            raise ElasticityError(f"DemandModel.predict: column {s['price']!r} must be positive prices")
        out = pd.DataFrame(index=df.index, columns=["units", "units_lo", "units_hi"], dtype=float)
        rng = np.random.default_rng(seed)
        a = (1 - level) / 2
        for key, grp in df.groupby(s["entity"], sort=False):
            fit = self.fits.get(key)
            if fit is None:
                raise ElasticityError(
                    f"DemandModel.predict: no fitted demand for {s['entity']}={key!r} "
                    "(unknown, or its elasticity was not identified)"
                )
            X = design_named(
                grp,
                s["price"],
                s["controls"],
                s["log_controls"],
                s["fixed_effects"],
                s["interactions"],
                columns=fit.columns,
            ).to_numpy(dtype=float)
            eta = X @ fit.params
            B = rng.multivariate_normal(fit.params, fit.cov, size=draws, method="eigh")
            eta_d = X @ B.T  # (rows, draws)
            if fit.method == "ols":
                smear = float(np.mean(np.exp(fit.residuals)))
                mean = np.exp(eta) * smear
                res = rng.choice(fit.residuals, size=eta_d.shape)
                sim = np.exp(eta_d + res)
            else:
                mean = np.exp(eta)
                sim = rng.poisson(np.exp(np.clip(eta_d, None, 30)))
            out.loc[grp.index, "units"] = mean
            out.loc[grp.index, "units_lo"] = np.quantile(sim, a, axis=1)
            out.loc[grp.index, "units_hi"] = np.quantile(sim, 1 - a, axis=1)
        return out


def _eb_shrink(b: np.ndarray, se: np.ndarray) -> tuple[float, float, float]:
    """DerSimonian–Laird random-effects pool: (mean, se of mean, between-entity variance tau²)."""
    w = 1 / se**2
    k = len(b)
    mu_fe = np.sum(w * b) / np.sum(w)
    q = float(np.sum(w * (b - mu_fe) ** 2))
    total = np.sum(w)
    others = np.array([np.sum(np.delete(w, i)) for i in range(k)])  # no cancellation when one w dominates
    c = float(np.sum(w * others) / total)
    tau2 = max(0.0, (q - (k - 1)) / c) if c > 0 else 0.0
    ws = 1 / (se**2 + tau2)
    mu = float(np.sum(ws * b) / np.sum(ws))
    return mu, float(np.sqrt(1 / np.sum(ws))), tau2


def shrink_estimates(
    estimates: pd.DataFrame,
    group: pd.Series | None = None,
    estimate: str = "elasticity",
    se: str = "se",
    identified: str = "identified",
    min_group: int = 3,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Empirical-Bayes partial pooling of per-entity estimates toward their group (category) mean.

    Adds `<estimate>_pooled`, `se_pooled`, `ci_lo_pooled`, `ci_hi_pooled`, `shrink_weight` (weight on
    the entity's own estimate), `pool_group`, `pool_mean`, `pool_tau`; entities whose own estimate is
    not identified get the group mean with the group's spread as uncertainty (said in `pool_note`).
    Groups with fewer than `min_group` identified entities pool with all entities instead.
    """
    from scipy.stats import norm

    check_columns(estimates, [estimate, se, identified], "shrink_estimates")
    out = estimates.copy()
    g = (
        pd.Series("all", index=out.index)
        if group is None
        else pd.Series(np.asarray(group, dtype=object), index=out.index).fillna("(none)").astype(str)
    )
    ok = out[identified].astype(bool) & np.isfinite(out[estimate]) & np.isfinite(out[se]) & (out[se] > 0)
    if ok.sum() < 2:
        raise ElasticityError(f"shrink_estimates: need at least 2 identified estimates to pool, got {int(ok.sum())}")
    z = norm.ppf(1 - alpha / 2)
    glob = _eb_shrink(out.loc[ok, estimate].to_numpy(float), out.loc[ok, se].to_numpy(float))
    cols = {k: np.full(len(out), np.nan) for k in ("post", "post_se", "w", "mu", "tau")}
    groups_used = np.empty(len(out), dtype=object)
    notes = [""] * len(out)
    for name, idx in g.groupby(g).groups.items():
        pos = out.index.get_indexer(idx)
        sel = ok.loc[idx]
        if sel.sum() >= min_group:
            mu, mu_se, tau2 = _eb_shrink(
                out.loc[idx][sel][estimate].to_numpy(float), out.loc[idx][sel][se].to_numpy(float)
            )
            used, k = name, int(sel.sum())
        else:
            (mu, mu_se, tau2), used, k = glob, "all", int(ok.sum())
        for j, i in zip(pos, idx):
            groups_used[j] = used
            cols["mu"][j], cols["tau"][j] = mu, np.sqrt(tau2)
            if ok.loc[i]:
                s2, bi = float(out.loc[i, se]) ** 2, float(out.loc[i, estimate])
                if k > 3:  # Morris (1983): shrink less, and widen, for the uncertainty in tau² and the mean
                    shrink = (k - 3) / (k - 1) * s2 / (s2 + tau2)
                    var = s2 * (1 - (k - 1) / k * shrink) + 2 / (k - 3) * shrink**2 * (bi - mu) ** 2
                else:
                    shrink = s2 / (s2 + tau2) if tau2 + s2 > 0 else 1.0
                    var = (1 - shrink) * s2 + shrink**2 * mu_se**2
                cols["w"][j] = 1 - shrink
                cols["post"][j] = (1 - shrink) * bi + shrink * mu
                cols["post_se"][j] = np.sqrt(var)
            else:
                cols["w"][j] = 0.0
                cols["post"][j] = mu
                cols["post_se"][j] = np.sqrt(tau2 + mu_se**2)
                notes[j] = f"own estimate not identified: {used!s} mean used"
    out[f"{estimate}_pooled"] = cols["post"]
    out["se_pooled"] = cols["post_se"]
    out["ci_lo_pooled"] = cols["post"] - z * cols["post_se"]
    out["ci_hi_pooled"] = cols["post"] + z * cols["post_se"]
    out["shrink_weight"] = cols["w"]
    out["pool_group"] = groups_used
    out["pool_mean"] = cols["mu"]
    out["pool_tau"] = cols["tau"]
    out["pool_note"] = notes
    return out
