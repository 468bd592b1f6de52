"""Price elasticity of demand on any long panel: `fit_demand` (per-entity log-log demand with calendar, trend,
cross prices, interactions, OLS or Poisson, category partial pooling), own/cross-price matrices,
specification comparisons and competitor-price columns.

Every function takes a long panel (one row per entity and period) and the names of its columns,
so any data set works: our own sales, the demo world, Dominick's orange juice, ...
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from priceintel.pricing.demand_model import DemandModel, EntityFit, add_calendar, design_named, shrink_estimates
from priceintel.pricing.panel import (
    KEYS,
    MIN_LOG_PRICE_STD,
    ElasticityError,
    Keys,
    check_columns,
    drop_note,
    positive_rows,
    unidentified,
)

#: residual degrees of freedom under which `fit_demand` guards HC1 errors with the conventional ones
SMALL_SAMPLE_DF = 30


def _demand_spec(
    panel: pd.DataFrame,
    entity: str,
    price: str,
    quantity: str,
    period: str | None,
    controls: Sequence[str],
    log_controls: Sequence[str],
    cross_prices: Sequence[str],
    fixed_effects: Sequence[str],
    interactions: Sequence[str],
    calendar: Sequence[str],
    trend: bool,
    category: str | None,
    method: str,
    cluster: str | None,
) -> tuple[dict, pd.DataFrame]:
    """The checked specification of a `fit_demand` call and the panel with its calendar/trend columns."""
    if method not in ("ols", "poisson"):
        raise ElasticityError(f"fit_demand: method={method!r} must be 'ols' or 'poisson'")
    controls, log_controls = list(controls), list(log_controls)
    cross_prices, fixed_effects, interactions = list(cross_prices), list(fixed_effects), list(interactions)
    cols = [entity, price, quantity, *controls, *log_controls, *cross_prices, *fixed_effects, *interactions] + [
        c for c in (period, category, cluster) if c
    ]
    check_columns(panel, cols, "fit_demand")
    if (calendar or trend) and not period:
        raise ElasticityError("fit_demand: calendar features and trend need the `period` column")
    spec: dict[str, Any] = dict(
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
        spec.update(_trend_scale(panel[period]))
    for c in spec["log_controls"]:
        v = pd.to_numeric(df_all[c], errors="coerce")
        if (v <= 0).any():
            raise ElasticityError(f"fit_demand: column {c!r} is logged but has non-positive values")
    return spec, df_all


def _trend_scale(p: pd.Series) -> dict:
    """Origin and span of the trend of a period column (dates: in days)."""
    if pd.api.types.is_datetime64_any_dtype(p):
        return {"trend_origin": p.min(), "trend_span": float((p.max() - p.min()).days) or 1.0}
    pn = pd.to_numeric(p)
    return {"trend_origin": float(pn.min()), "trend_span": float(pn.max() - pn.min()) or 1.0}


def _usable_rows(grp: pd.DataFrame, spec: dict, cluster: str | None) -> tuple[pd.DataFrame, list[str]]:
    """One entity's rows the fit can use (Poisson keeps zero sales) and notes on the rows dropped."""
    price, quantity = spec["price"], spec["quantity"]
    if spec["method"] == "poisson":
        q = pd.to_numeric(grp[quantity], errors="coerce")
        p = pd.to_numeric(grp[price], errors="coerce")
        okr = np.isfinite(q) & np.isfinite(p) & (p > 0) & (q >= 0)
        df = grp.loc[okr].copy()
        df[price], df[quantity] = p[okr].astype(float), q[okr].astype(float)
        zero_q, bad = 0, int((~okr).sum())
    else:
        df, zero_q, bad = positive_rows(grp, price, quantity)
    notes = drop_note(zero_q, bad)
    need = [*spec["controls"], *spec["log_controls"], *spec["fixed_effects"], *spec["interactions"]] + (
        [cluster] if cluster else []
    )
    nan_rows = int(df[need].isna().any(axis=1).sum()) if need else 0
    if nan_rows:
        notes.append(f"dropped {nan_rows} row(s) with missing controls")
        df = df.dropna(subset=need)
    return df, notes


def _blank_result(grp: pd.DataFrame, df: pd.DataFrame, spec: dict, notes: list[str]) -> dict:
    """An entity's estimates row before the fit: sizes and price spread, every estimate NaN, its category."""
    price, category = spec["price"], spec["category"]
    n = len(df)
    res: dict[str, Any] = dict(
        elasticity=np.nan,
        se=np.nan,
        ci_lo=np.nan,
        ci_hi=np.nan,
        n=n,
        price_cv=float(df[price].std(ddof=0) / df[price].mean()) if n else np.nan,
        log_price_std=float(np.log(df[price]).std(ddof=0)) if n else float("nan"),
        identified=False,
    )
    for c in spec["cross_prices"]:
        res.update({f"cross[{c}]": np.nan, f"cross[{c}]_se": np.nan})
    for zc in spec["interactions"]:
        res.update({f"elasticity[{zc}=1]": np.nan, f"elasticity[{zc}=1]_se": np.nan})
    if category:
        cats = grp[category].dropna().unique()
        res[category] = cats[0] if len(cats) else None
        if len(cats) > 1:
            notes.append(f"{category!r} not constant within the entity: first value used")
    return res


def _estimate(
    df: pd.DataFrame, X: pd.DataFrame, spec: dict, cluster: str | None, alpha: float, z: float, res: dict, notes: list
) -> EntityFit | None:
    """Fit one identified entity: fills res (elasticity, interval, cross prices, interactions) and notes."""
    from scipy.stats import t as student_t

    price, quantity = spec["price"], spec["quantity"]
    fit = _fit_one(df[quantity].to_numpy(float), X, spec["method"], pd.factorize(df[cluster])[0] if cluster else None)
    if fit is None:
        notes.append("fit did not converge")
        return None
    params, cov, resid, dfr = fit
    names = list(X.columns)
    i = names.index("log_price")
    b, s = float(params[i]), float(np.sqrt(cov[i, i]))
    crit = z if dfr is None else float(student_t.ppf(1 - alpha / 2, max(dfr, 1)))
    res.update(elasticity=b, se=s, ci_lo=b - crit * s, ci_hi=b + crit * s, identified=True)
    if dfr is not None and dfr < 10:
        notes.append(f"only {dfr} residual degrees of freedom: treat the interval with care")
    for c in spec["cross_prices"]:
        j = names.index(f"log({c})") if f"log({c})" in names else None
        if j is not None:
            res[f"cross[{c}]"], res[f"cross[{c}]_se"] = float(params[j]), float(np.sqrt(cov[j, j]))
        else:
            notes.append(f"competitor price {c!r} does not vary: cross-price not identified")
    for zc in spec["interactions"]:
        name = f"log_price:{zc}"
        if name in names:
            j = names.index(name)
            res[f"elasticity[{zc}=1]"] = float(params[i] + params[j])
            res[f"elasticity[{zc}=1]_se"] = float(np.sqrt(cov[i, i] + cov[j, j] + 2 * cov[i, j]))
    if b >= 0:
        notes.append("non-negative elasticity: check for confounding (promotions, seasonality)")
    elif s > 0.5 * abs(b):
        notes.append(f"imprecise: standard error {s:.2f} is over half the estimate")
    return EntityFit(
        names, params, cov, spec["method"], resid, float(df[price].median()), float(df[quantity].mean()), len(df)
    )


def _fit_entity(
    grp: pd.DataFrame, spec: dict, cluster: str | None, alpha: float, z: float, min_log_price_std: float
) -> tuple[dict, EntityFit | None]:
    """One entity's estimates row (with its note) and its fit (None when not identified)."""
    df, notes = _usable_rows(grp, spec, cluster)
    res = _blank_result(grp, df, spec, notes)
    n, lp_std = len(df), res["log_price_std"]
    X = (
        design_named(
            df, spec["price"], spec["controls"], spec["log_controls"], spec["fixed_effects"], spec["interactions"]
        )
        if n
        else None
    )
    fit = None
    why = unidentified(n, lp_std, X, min_log_price_std)
    if why is not None or X is None:
        notes.append(why or "no usable rows")
    else:
        fit = _estimate(df, X, spec, cluster, alpha, z, res, notes)
    res["note"] = "; ".join(notes)
    return res, fit


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

    spec, df_all = _demand_spec(
        panel,
        entity,
        price,
        quantity,
        period,
        controls,
        log_controls,
        cross_prices,
        fixed_effects,
        interactions,
        calendar,
        trend,
        category,
        method,
        cluster,
    )
    z = norm.ppf(1 - alpha / 2)
    rows, fits = [], {}
    for key, grp in df_all.groupby(entity, sort=True, dropna=True):
        res, fit = _fit_entity(grp, spec, cluster, alpha, z, min_log_price_std)
        if fit is not None:
            fits[key] = fit
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
    check_columns(
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
    fit = functools.partial(fit_demand, entity=entity, price=price, quantity=quantity, controls=controls)
    for e in ents:
        part = merged[merged[entity] == e]
        others = [pcols[o] for o in ents if o != e]
        m = fit(part, cross_prices=others, fixed_effects=fixed_effects, cluster=cluster, alpha=alpha)
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
    prefix: str = "comp_",
    keys: Keys = KEYS,
) -> tuple[pd.DataFrame, list[str]]:
    """Sales joined with each competitor's price as a column (`comp_<seller>`) and the lowest
    (`comp_min`); gaps (out of stock, not scraped) are filled with that entity's median for the
    seller, so a missing day does not drop the row. Returns (frame, per-seller column names).
    """
    entity, period, seller, price = keys.all()
    check_columns(sales, [entity, period], "with_competitor_prices(sales)")
    check_columns(competitors, [entity, period, seller, price], "with_competitor_prices(competitors)")
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
