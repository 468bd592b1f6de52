"""Price elasticity of demand: per-entity and pooled log-log regressions, pricing rules.

Every function takes a long panel (one row per entity and period) and the names of its columns,
so any data set works: our own sales, the demo world, Dominick's orange juice, ...
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from priceintel import PriceIntelError

#: columns of `fit_loglog`'s result (the entity column comes first, under its own name)
ELASTICITY_COLUMNS = [
    "elasticity",
    "se",
    "ci_lo",
    "ci_hi",
    "n",
    "price_cv",
    "identified",
    "note",
]
#: log-price standard deviation under which an elasticity is declared not identified
MIN_LOG_PRICE_STD = 0.02


class ElasticityError(PriceIntelError):
    """Bad input to an elasticity fit or pricing rule; the message names the column or value."""


class ElasticityWarning(UserWarning):
    """A pricing rule had to fall back (e.g. inelastic demand: the upper bound is returned)."""


@dataclass(frozen=True)
class PriceRecommendation:
    """A recommended price and the reason behind it."""

    price: float
    elasticity: float
    unit_cost: float
    note: str = ""


# --- helpers -------------------------------------------------------------------------------


def _check_columns(panel: pd.DataFrame, cols: Iterable[str], where: str) -> None:
    """Raise ElasticityError naming columns missing from `panel`."""
    if not isinstance(panel, pd.DataFrame):
        raise ElasticityError(f"{where}: expected a pandas DataFrame, got {type(panel).__name__}")
    missing = [c for c in cols if c not in panel.columns]
    if missing:
        raise ElasticityError(f"{where}: column(s) {missing} not in panel (columns: {list(panel.columns)})")


def _positive_rows(df: pd.DataFrame, price: str, quantity: str) -> tuple[pd.DataFrame, int, int]:
    """Rows with finite positive price and quantity, plus counts of dropped zero / NaN-or-bad rows."""
    p = pd.to_numeric(df[price], errors="coerce")
    q = pd.to_numeric(df[quantity], errors="coerce")
    zero_q = int((q == 0).sum())
    ok = np.isfinite(p) & np.isfinite(q) & (p > 0) & (q > 0)
    bad = int((~ok).sum()) - zero_q
    out = df.loc[ok].copy()
    out[price] = p[ok].astype(float)
    out[quantity] = q[ok].astype(float)
    return out, zero_q, bad


def _drop_note(zero_q: int, bad: int) -> list[str]:
    """Human-readable notes for rows dropped before taking logs."""
    notes = []
    if zero_q:
        notes.append(f"dropped {zero_q} row(s) with zero quantity")
    if bad:
        notes.append(f"dropped {bad} row(s) with missing/non-positive price or quantity")
    return notes


def _design(df: pd.DataFrame, price: str, controls: Sequence[str], fixed_effects: Sequence[str]) -> pd.DataFrame:
    """Design matrix: const, log price, controls (categoricals become dummies), FE dummies."""
    parts = [pd.Series(1.0, index=df.index, name="const"), np.log(df[price]).rename("log_price")]
    for c in controls:
        col = df[c]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            parts.append(col.astype(float).rename(c))
        else:
            parts.append(pd.get_dummies(col.astype(str), prefix=c, drop_first=True, dtype=float))
    for fe in fixed_effects:
        parts.append(pd.get_dummies(df[fe].astype(str), prefix=fe, drop_first=True, dtype=float))
    X = pd.concat(parts, axis=1)
    # a dummy level absent from this subset would be an all-zero column: drop it
    keep = (X.columns.isin(["const", "log_price"])) | (X.std(axis=0, ddof=0).to_numpy() > 0)
    return X.loc[:, keep]


def _fit_ols(y: np.ndarray, X: pd.DataFrame, groups: np.ndarray | None):
    """OLS with HC1 (or cluster-robust when `groups` is given) standard errors."""
    import statsmodels.api as sm

    model = sm.OLS(y, X.to_numpy(dtype=float))
    if groups is not None:
        return model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    return model.fit(cov_type="HC1")


def with_day_of_week(panel: pd.DataFrame, date: str = "ds", name: str = "dow") -> pd.DataFrame:
    """Copy of `panel` with a day-of-week column (0=Mon) for use as a fixed effect."""
    _check_columns(panel, [date], "with_day_of_week")
    out = panel.copy()
    out[name] = pd.to_datetime(out[date]).dt.dayofweek
    return out


# --- per-entity and pooled fits ---------------------------------------------------------------


def fit_loglog(
    panel: pd.DataFrame,
    entity: str = "sku",
    price: str = "price",
    quantity: str = "units",
    controls: Sequence[str] = (),
    fixed_effects: Sequence[str] = (),
    cluster: str | None = None,
    min_log_price_std: float = MIN_LOG_PRICE_STD,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-entity OLS of log(quantity) on log(price) + controls + FE dummies, robust SEs."""
    controls, fixed_effects = list(controls), list(fixed_effects)
    cols = [entity, price, quantity, *controls, *fixed_effects] + ([cluster] if cluster else [])
    _check_columns(panel, cols, "fit_loglog")

    rows = []
    for key, grp in panel.groupby(entity, sort=True, dropna=True):
        df, zero_q, bad = _positive_rows(grp, price, quantity)
        notes = _drop_note(zero_q, bad)
        df = df.dropna(subset=[*controls, *fixed_effects] + ([cluster] if cluster else []))
        n = len(df)
        lp = np.log(df[price].to_numpy()) if n else np.array([])
        price_cv = float(df[price].std(ddof=0) / df[price].mean()) if n else float("nan")
        res = dict(elasticity=np.nan, se=np.nan, ci_lo=np.nan, ci_hi=np.nan, n=n, price_cv=price_cv, identified=False)
        X = _design(df, price, controls, fixed_effects) if n else None
        if n == 0:
            notes.append("no usable rows")
        elif lp.std() < min_log_price_std:
            notes.append(f"price variation too small to identify (log-price std {lp.std():.4f} < {min_log_price_std})")
        elif n <= X.shape[1] + 1:
            notes.append(f"too few observations ({n}) for {X.shape[1]} parameters")
        elif np.linalg.matrix_rank(X.to_numpy(dtype=float)) < X.shape[1]:
            notes.append("log price collinear with controls/fixed effects")
        else:
            groups = pd.factorize(df[cluster])[0] if cluster else None
            fit = _fit_ols(np.log(df[quantity].to_numpy()), X, groups)
            b, se = float(fit.params[1]), float(fit.bse[1])
            lo, hi = (float(v) for v in np.asarray(fit.conf_int(alpha))[1])
            res.update(elasticity=b, se=se, ci_lo=lo, ci_hi=hi, identified=True)
            if b >= 0:
                notes.append("non-negative elasticity: check for confounding (promotions, seasonality)")
        res["note"] = "; ".join(notes)
        rows.append({entity: key, **res})
    out = pd.DataFrame(rows, columns=[entity, *ELASTICITY_COLUMNS])
    return out.astype({"n": "int64", "identified": bool})


def fit_pooled(
    panel: pd.DataFrame,
    price: str = "price",
    quantity: str = "units",
    controls: Sequence[str] = (),
    fixed_effects: Sequence[str] = (),
    cluster: str | None = None,
    alpha: float = 0.05,
) -> dict:
    """One elasticity for the whole panel: log(q) ~ log(p) + controls + FE, HC1 or clustered SE."""
    controls, fixed_effects = list(controls), list(fixed_effects)
    cols = [price, quantity, *controls, *fixed_effects] + ([cluster] if cluster else [])
    _check_columns(panel, cols, "fit_pooled")
    df, zero_q, bad = _positive_rows(panel, price, quantity)
    notes = _drop_note(zero_q, bad)
    df = df.dropna(subset=[*controls, *fixed_effects] + ([cluster] if cluster else []))
    if len(df) == 0:
        raise ElasticityError(f"fit_pooled: no rows with positive {price!r} and {quantity!r}")
    lp_std = float(np.log(df[price]).std(ddof=0))
    if lp_std < MIN_LOG_PRICE_STD:
        raise ElasticityError(
            f"fit_pooled: price variation too small to identify (std of log {price!r} = {lp_std:.4f})"
        )
    X = _design(df, price, controls, fixed_effects)
    if len(df) <= X.shape[1]:
        raise ElasticityError(f"fit_pooled: {len(df)} rows for {X.shape[1]} parameters")
    groups = pd.factorize(df[cluster])[0] if cluster else None
    fit = _fit_ols(np.log(df[quantity].to_numpy()), X, groups)
    ci = np.asarray(fit.conf_int(alpha))[1]
    return dict(
        elasticity=float(fit.params[1]),
        se=float(fit.bse[1]),
        ci_lo=float(ci[0]),
        ci_hi=float(ci[1]),
        n=int(len(df)),
        n_params=int(X.shape[1]),
        r2=float(fit.rsquared),
        cov_type="cluster" if cluster else "HC1",
        n_clusters=int(groups.max() + 1) if groups is not None else None,
        note="; ".join(notes),
    )


# --- pricing rules ---------------------------------------------------------------------------


def recommend_price(
    elasticity: float, unit_cost: float, bounds: tuple[float, float] | None = None
) -> PriceRecommendation:
    """Profit-maximising price under constant elasticity, clipped to bounds, with a note."""
    e, c = float(elasticity), float(unit_cost)
    if not np.isfinite(e):
        raise ElasticityError(f"recommend_price: elasticity {elasticity!r} is not a finite number")
    if not np.isfinite(c) or c <= 0:
        raise ElasticityError(f"recommend_price: unit_cost {unit_cost!r} must be a positive number")
    lo, hi = (None, None) if bounds is None else (float(bounds[0]), float(bounds[1]))
    if lo is not None and not lo <= hi:
        raise ElasticityError(f"recommend_price: bounds {bounds!r} are not (low, high) with low <= high")
    if e >= -1:
        if hi is None:
            raise ElasticityError(
                f"recommend_price: elasticity {e:.3f} is inelastic (>= -1); profit grows without "
                "bound in price, so an upper bound is required"
            )
        return PriceRecommendation(hi, e, c, f"inelastic demand (elasticity {e:.3f} >= -1): upper bound returned")
    p = c * e / (1 + e)
    note = f"markup rule p = c*e/(1+e) = {p:.4f}"
    if lo is not None and p < lo:
        p, note = lo, note + f"; clipped to lower bound {lo}"
    elif hi is not None and p > hi:
        p, note = hi, note + f"; clipped to upper bound {hi}"
    return PriceRecommendation(float(p), e, c, note)


def optimal_price(elasticity: float, unit_cost: float, bounds: tuple[float, float] | None = None) -> float:
    """Constant-elasticity optimal price c*e/(1+e) (e < -1) clipped to bounds; warns when inelastic."""
    rec = recommend_price(elasticity, unit_cost, bounds)
    if rec.elasticity >= -1:
        warnings.warn(rec.note, ElasticityWarning, stacklevel=2)
    return rec.price


def response_curve(
    elasticity: float,
    ref_price: float,
    ref_units: float,
    unit_cost: float,
    prices: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Units, revenue and profit over `prices` under constant elasticity through (ref_price, ref_units)."""
    if not (np.isfinite(ref_price) and ref_price > 0):
        raise ElasticityError(f"response_curve: ref_price {ref_price!r} must be positive")
    p = np.asarray(prices, dtype=float)
    if (p <= 0).any() or not np.isfinite(p).all():
        raise ElasticityError("response_curve: prices must be finite and positive")
    units = float(ref_units) * (p / float(ref_price)) ** float(elasticity)
    return pd.DataFrame({"price": p, "units": units, "revenue": p * units, "profit": (p - float(unit_cost)) * units})


# --- demand models: calendar controls, cross prices, interactions, prediction ------------------

#: residual degrees of freedom under which `fit_demand` guards HC1 errors with the conventional ones
SMALL_SAMPLE_DF = 30
#: calendar features `fit_demand` can derive from a datetime period column
CALENDAR_FEATURES = ("dow", "month", "week_of_year")


def add_calendar(
    panel: pd.DataFrame, period: str, features: Sequence[str] = ("dow",), trend: bool = False
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Copy of `panel` with calendar dummies and a trend; returns (frame, new FE cols, new controls)."""
    _check_columns(panel, [period], "add_calendar")
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


def _design_named(
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
            _check_columns(df, [s["period"]], "DemandModel.predict")
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
        _check_columns(df, need, "DemandModel.predict")
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
            X = _design_named(
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

    _check_columns(estimates, [estimate, se, identified], "shrink_estimates")
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


def fit_demand(
    panel: pd.DataFrame,
    entity: str,
    price: str,
    quantity: str,
    period: str | None = None,
    controls: Sequence[str] = (),
    log_controls: Sequence[str] = (),
    cross_prices: Sequence[str] = (),
    fixed_effects: Sequence[str] = (),
    interactions: Sequence[str] = (),
    calendar: Sequence[str] = (),
    trend: bool = False,
    category: str | None = None,
    method: str = "ols",
    cluster: str | None = None,
    alpha: float = 0.05,
    min_log_price_std: float = MIN_LOG_PRICE_STD,
) -> DemandModel:
    """Per-entity log-log demand on ANY long panel, with diagnostics and category partial pooling.

    log(quantity) ~ log(price) [+ log(price)*interactions] + controls + log(log_controls)
    + log(cross_prices) + fixed effects [+ calendar dummies of `period`] [+ trend], by OLS with HC1
    (or cluster-robust) errors, or `method="poisson"` (Poisson pseudo-likelihood, keeps zero sales).
    `cross_prices` are other sellers'/products' price columns: their coefficients are cross-price
    elasticities (`cross[<col>]`). `category` (a column constant within an entity) turns on
    empirical-Bayes shrinkage of the own-price elasticity toward the category mean.
    """
    from scipy.stats import norm
    from scipy.stats import t as student_t

    if method not in ("ols", "poisson"):
        raise ElasticityError(f"fit_demand: method={method!r} must be 'ols' or 'poisson'")
    controls, log_controls = list(controls), list(log_controls)
    cross_prices, fixed_effects, interactions = list(cross_prices), list(fixed_effects), list(interactions)
    cols = [entity, price, quantity, *controls, *log_controls, *cross_prices, *fixed_effects, *interactions] + [
        c for c in (period, category, cluster) if c
    ]
    _check_columns(panel, cols, "fit_demand")
    if (calendar or trend) and not period:
        raise ElasticityError("fit_demand: calendar features and trend need the `period` column")
    spec = dict(
        entity=entity,
        price=price,
        quantity=quantity,
        period=period,
        controls=controls,
        log_controls=[*cross_prices, *log_controls],
        cross_prices=cross_prices,
        raw_fe=fixed_effects,
        interactions=interactions,
        calendar=list(calendar),
        trend=trend,
        method=method,
        category=category,
    )
    df_all, cal_fe, cal_ctrl = add_calendar(panel, period, calendar, trend) if period else (panel, [], [])
    spec["fixed_effects"] = fixed_effects + cal_fe
    spec["controls"] = controls + cal_ctrl
    if trend:
        p = panel[period]
        if pd.api.types.is_datetime64_any_dtype(p):
            spec["trend_origin"] = p.min()
            spec["trend_span"] = float((p.max() - p.min()).days) or 1.0
        else:
            pn = pd.to_numeric(p)
            spec["trend_origin"], spec["trend_span"] = float(pn.min()), float(pn.max() - pn.min()) or 1.0
    for c in spec["log_controls"]:
        v = pd.to_numeric(df_all[c], errors="coerce")
        if (v <= 0).any():
            raise ElasticityError(f"fit_demand: column {c!r} is logged but has non-positive values")
    z = norm.ppf(1 - alpha / 2)
    rows, fits = [], {}
    for key, grp in df_all.groupby(entity, sort=True, dropna=True):
        if method == "poisson":
            q = pd.to_numeric(grp[quantity], errors="coerce")
            p = pd.to_numeric(grp[price], errors="coerce")
            okr = np.isfinite(q) & np.isfinite(p) & (p > 0) & (q >= 0)
            df = grp.loc[okr].copy()
            df[price], df[quantity] = p[okr].astype(float), q[okr].astype(float)
            zero_q, bad = 0, int((~okr).sum())
        else:
            df, zero_q, bad = _positive_rows(grp, price, quantity)
        notes = _drop_note(zero_q, bad)
        need = [*spec["controls"], *spec["log_controls"], *spec["fixed_effects"], *interactions] + (
            [cluster] if cluster else []
        )
        nan_rows = int(df[need].isna().any(axis=1).sum()) if need else 0
        if nan_rows:
            notes.append(f"dropped {nan_rows} row(s) with missing controls")
            df = df.dropna(subset=need)
        n = len(df)
        lp_std = float(np.log(df[price]).std(ddof=0)) if n else float("nan")
        res = dict(
            elasticity=np.nan,
            se=np.nan,
            ci_lo=np.nan,
            ci_hi=np.nan,
            n=n,
            price_cv=float(df[price].std(ddof=0) / df[price].mean()) if n else np.nan,
            log_price_std=lp_std,
            identified=False,
        )
        for c in cross_prices:
            res.update({f"cross[{c}]": np.nan, f"cross[{c}]_se": np.nan})
        for zc in interactions:
            res.update({f"elasticity[{zc}=1]": np.nan, f"elasticity[{zc}=1]_se": np.nan})
        if category:
            cats = grp[category].dropna().unique()
            res[category] = cats[0] if len(cats) else None
            if len(cats) > 1:
                notes.append(f"{category!r} not constant within the entity: first value used")
        X = (
            _design_named(df, price, spec["controls"], spec["log_controls"], spec["fixed_effects"], interactions)
            if n
            else None
        )
        if n == 0:
            notes.append("no usable rows")
        elif lp_std < min_log_price_std:
            notes.append(f"price variation too small to identify (log-price std {lp_std:.4f} < {min_log_price_std})")
        elif n <= X.shape[1] + 1:
            notes.append(f"too few observations ({n}) for {X.shape[1]} parameters")
        elif np.linalg.matrix_rank(X.to_numpy(dtype=float)) < X.shape[1]:
            notes.append("log price collinear with controls/fixed effects")
        else:
            fit = _fit_one(df[quantity].to_numpy(float), X, method, pd.factorize(df[cluster])[0] if cluster else None)
            if fit is None:
                notes.append("fit did not converge")
            else:
                params, cov, resid, dfr = fit
                names = list(X.columns)
                i = names.index("log_price")
                b, s = float(params[i]), float(np.sqrt(cov[i, i]))
                crit = z if dfr is None else float(student_t.ppf(1 - alpha / 2, max(dfr, 1)))
                res.update(elasticity=b, se=s, ci_lo=b - crit * s, ci_hi=b + crit * s, identified=True)
                if dfr is not None and dfr < 10:
                    notes.append(f"only {dfr} residual degrees of freedom: treat the interval with care")
                for c in cross_prices:
                    j = names.index(f"log({c})") if f"log({c})" in names else None
                    if j is not None:
                        res[f"cross[{c}]"], res[f"cross[{c}]_se"] = float(params[j]), float(np.sqrt(cov[j, j]))
                    else:
                        notes.append(f"competitor price {c!r} does not vary: cross-price not identified")
                for zc in interactions:
                    name = f"log_price:{zc}"
                    if name in names:
                        j = names.index(name)
                        res[f"elasticity[{zc}=1]"] = float(params[i] + params[j])
                        res[f"elasticity[{zc}=1]_se"] = float(np.sqrt(cov[i, i] + cov[j, j] + 2 * cov[i, j]))
                if b >= 0:
                    notes.append("non-negative elasticity: check for confounding (promotions, seasonality)")
                elif s > 0.5 * abs(b):
                    notes.append(f"imprecise: standard error {s:.2f} is over half the estimate")
                fits[key] = EntityFit(
                    names, params, cov, method, resid, float(df[price].median()), float(df[quantity].mean()), n
                )
        res["note"] = "; ".join(notes)
        rows.append({entity: key, **res})
    est = pd.DataFrame(rows)
    if est.empty:
        raise ElasticityError(f"fit_demand: panel has no rows with a non-missing {entity!r}")
    est = est.astype({"n": "int64", "identified": bool})
    if category and est["identified"].sum() >= 2:
        est = shrink_estimates(est, est[category], alpha=alpha)
    return DemandModel(spec, fits, est)


def _fit_one(y: np.ndarray, X: pd.DataFrame, method: str, groups: np.ndarray | None):
    """(params, covariance, log-scale residuals) of one OLS or Poisson fit; None if it fails."""
    import statsmodels.api as sm

    Xa = X.to_numpy(dtype=float)
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": groups}} if groups is not None else {"cov_type": "HC1"}
    if method == "ols":
        # robust (HC1/cluster) covariance; with few residual degrees of freedom HC1 is biased down, so
        # there it is never allowed below the conventional one (Angrist & Pischke's max rule)
        conv = sm.OLS(np.log(y), Xa).fit()
        rob = sm.OLS(np.log(y), Xa).fit(**kw)
        cov = np.asarray(rob.cov_params())
        if groups is None and conv.df_resid < SMALL_SAMPLE_DF and np.asarray(conv.cov_params())[1, 1] > cov[1, 1]:
            cov = np.asarray(conv.cov_params())
        df = (len(np.unique(groups)) - 1) if groups is not None else int(conv.df_resid)
        return np.asarray(rob.params), cov, np.asarray(conv.resid), df
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.GLM(y, Xa, family=sm.families.Poisson()).fit(**kw)
    except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - numerical failure
        return None
    if not np.all(np.isfinite(fit.params)):
        return None
    mu = np.asarray(fit.fittedvalues)
    resid = np.log(np.maximum(y, 0.5)) - np.log(mu)
    return np.asarray(fit.params), np.asarray(fit.cov_params()), resid, None


def cross_price_matrix(
    panel: pd.DataFrame,
    entity: str,
    market: Sequence[str] | str,
    price: str,
    quantity: str,
    controls: Sequence[str] = (),
    fixed_effects: Sequence[str] = (),
    cluster: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Own- and cross-price elasticities between the entities of a long panel that share markets.

    Each entity's log(quantity) is regressed on the log prices of every entity in the same market
    (e.g. store-week); rows of the result are the demand equation, columns the price.
    Returns a long frame: `demand, price_of, elasticity, se, ci_lo, ci_hi, n`.
    """
    market = [market] if isinstance(market, str) else list(market)
    _check_columns(
        panel,
        [entity, price, quantity, *market, *controls, *fixed_effects] + ([cluster] if cluster else []),
        "cross_price_matrix",
    )
    keyed = panel.dropna(subset=[entity, *market])
    if keyed.duplicated([*market, entity]).any():
        raise ElasticityError(
            f"cross_price_matrix: more than one row per ({', '.join(market)}, {entity}); aggregate first"
        )
    wide = keyed.pivot_table(index=market, columns=entity, values=price, aggfunc="first")
    ents = list(wide.columns)
    if len(ents) < 2:
        raise ElasticityError(f"cross_price_matrix: need at least two {entity!r} values, got {ents}")
    pcols = {e: f"_p[{e}]" for e in ents}
    wide = wide.rename(columns=pcols).reset_index()
    merged = keyed.merge(wide, on=market, how="inner").dropna(subset=list(pcols.values()))
    out = []
    for e in ents:
        part = merged[merged[entity] == e]
        others = [pcols[o] for o in ents if o != e]
        m = fit_demand(
            part,
            entity=entity,
            price=price,
            quantity=quantity,
            controls=controls,
            cross_prices=others,
            fixed_effects=fixed_effects,
            cluster=cluster,
            alpha=alpha,
        )
        r = m.estimates.iloc[0]
        out.append(dict(demand=e, price_of=e, elasticity=r["elasticity"], se=r["se"], n=int(r["n"]), note=r["note"]))
        for o in ents:
            if o == e:
                continue
            b, s = r[f"cross[{pcols[o]}]"], r[f"cross[{pcols[o]}]_se"]
            out.append(dict(demand=e, price_of=o, elasticity=b, se=s, n=int(r["n"]), note=""))
    from scipy.stats import norm

    res = pd.DataFrame(out)
    z = norm.ppf(1 - alpha / 2)
    res["ci_lo"] = res["elasticity"] - z * res["se"]
    res["ci_hi"] = res["elasticity"] + z * res["se"]
    return res[["demand", "price_of", "elasticity", "se", "ci_lo", "ci_hi", "n", "note"]]


def compare_specifications(panel: pd.DataFrame, price: str, quantity: str, specs: dict) -> pd.DataFrame:
    """Pooled / per-group elasticities under several named specifications, one row per (spec, group).

    `specs` maps a name to keyword arguments: `by` (entity column, or None for pooled), `controls`,
    `fixed_effects`, `interactions`, `cluster`.
    """
    rows = []
    for name, kw in specs.items():
        kw = dict(kw)
        by = kw.pop("by", None)
        data = panel if by else panel.assign(_all="all")
        m = fit_demand(data, entity=by or "_all", price=price, quantity=quantity, **kw)
        for r in m.estimates.to_dict("records"):
            row = dict(
                spec=name,
                group=r[by or "_all"],
                elasticity=r["elasticity"],
                se=r["se"],
                ci_lo=r["ci_lo"],
                ci_hi=r["ci_hi"],
                n=r["n"],
                note=r["note"],
            )
            for zc in kw.get("interactions", ()):
                row[f"elasticity[{zc}=1]"] = r.get(f"elasticity[{zc}=1]")
            rows.append(row)
    return pd.DataFrame(rows)


def with_competitor_prices(
    sales: pd.DataFrame,
    competitors: pd.DataFrame,
    entity: str = "sku",
    period: str = "ds",
    seller: str = "retailer",
    price: str = "price",
    prefix: str = "comp_",
) -> tuple[pd.DataFrame, list[str]]:
    """Sales joined with each competitor's price as a column (`comp_<seller>`) and the lowest
    (`comp_min`); gaps (out of stock, not scraped) are filled with that entity's median for the
    seller, so a missing day does not drop the row. Returns (frame, per-seller column names).
    """
    _check_columns(sales, [entity, period], "with_competitor_prices(sales)")
    _check_columns(competitors, [entity, period, seller, price], "with_competitor_prices(competitors)")
    c = competitors.dropna(subset=[entity, price])
    c = c[pd.to_numeric(c[price], errors="coerce") > 0]
    wide = c.pivot_table(index=[entity, period], columns=seller, values=price, aggfunc="min")
    names = {s: f"{prefix}{s}" for s in wide.columns}
    wide = wide.rename(columns=names).reset_index()
    out = sales.merge(wide, on=[entity, period], how="left")
    cols = list(names.values())
    raw_min = out[cols].min(axis=1) if cols else pd.Series(np.nan, index=out.index)
    for col in cols:
        out[col] = out.groupby(entity)[col].transform(lambda s: s.fillna(s.median()))
    out[f"{prefix}min"] = raw_min
    out[f"{prefix}min"] = out.groupby(entity)[f"{prefix}min"].transform(lambda s: s.fillna(s.median()))
    return out, cols
