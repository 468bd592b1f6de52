"""Competitive analytics on long frames: positioning (price index), price leadership and
share-of-lowest-price, market share, promotion effectiveness and product segmentation.

Every function takes the names of its columns, so any long panel works.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from priceintel import PriceIntelError
from priceintel.items import require_columns
from priceintel.pricing.panel import KEYS, Keys

__all__ = [
    "AnalyticsError",
    "ASSORTMENT_COLUMNS",
    "category_assortment",
    "positioning_matrix",
    "price_leadership",
    "market_share",
    "promotion_events",
    "promotion_summary",
    "product_features",
    "segment_products",
]


class AnalyticsError(PriceIntelError):
    """Bad input to an analytics function; the message names the column or value."""


def _need(df, cols, where: str) -> None:
    """Raise AnalyticsError naming the missing columns."""
    require_columns(df, cols, where, AnalyticsError, "not in frame")


#: columns of `category_assortment`
ASSORTMENT_COLUMNS = [
    "category",
    "retailer",
    "listings",
    "matched",
    "unmatched",
    "their_median",
    "our_median",
    "median_index",
]


def category_assortment(ours: pd.DataFrame, listings: pd.DataFrame) -> pd.DataFrame:
    """Category positioning over each competitor's whole assortment, matched or not.

    `ours`: sku, category, price (our current prices); `listings`: retailer, category, matched, price (every
    competitor listing's latest price; the category of an unmatched listing comes from the classifier, and
    listings without one count under "(uncategorised)"). One row per category and retailer: listings, how many
    are matched to our products and how many are not, the median of their prices and of ours in that category,
    and `median_index` = 100 × our median / their median (110: our typical price in the category is 10% above
    theirs). A price index over matched pairs (`positioning_matrix`) compares like with like; this one also
    sees the products we do not sell.
    """
    _need(ours, ["sku", "category", "price"], "category_assortment(ours)")
    _need(listings, ["retailer", "category", "matched", "price"], "category_assortment(listings)")
    lst = listings.assign(
        category=listings["category"].fillna("(uncategorised)"), matched=listings["matched"].astype(bool)
    )
    if lst.empty:
        return pd.DataFrame(columns=ASSORTMENT_COLUMNS)
    g = lst.groupby(["category", "retailer"])
    out = pd.DataFrame(
        {
            "listings": g.size(),
            "matched": g["matched"].sum().astype(int),
            "their_median": g["price"].median(),
        }
    ).reset_index()
    out["unmatched"] = out["listings"] - out["matched"]
    our_median = ours.dropna(subset=["price"]).groupby("category")["price"].median()
    out["our_median"] = out["category"].map(our_median).astype(float)
    out["median_index"] = 100 * out["our_median"] / out["their_median"]
    return out[ASSORTMENT_COLUMNS].sort_values(["category", "retailer"]).reset_index(drop=True)


def positioning_matrix(
    ours: pd.DataFrame,
    competitors: pd.DataFrame,
    group: str | None = None,
    keys: Keys = KEYS,
) -> pd.DataFrame:
    """Our price index vs each competitor (100 = same price, 110 = we are 10% dearer).

    `ours`: entity, period, price (+ group); `competitors`: entity, period, seller, price.
    Per entity the index is the median over shared periods of 100 * ours / theirs; group rows
    (e.g. category, and "ALL") are geometric means over their entities. Rows: entity/group;
    columns: one per competitor plus `vs_lowest` (vs the cheapest competitor each period).
    """
    entity, period, seller, price = keys.all()
    _need(ours, [entity, period, price, group], "positioning_matrix(ours)")
    _need(competitors, [entity, period, seller, price], "positioning_matrix(competitors)")
    o = ours[[entity, period, price] + ([group] if group else [])].rename(columns={price: "_ours"})
    c = competitors[[entity, period, seller, price]].dropna(subset=[price])
    low = c.groupby([entity, period])[price].min().rename("_low").reset_index()
    m = c.merge(o, on=[entity, period], how="inner")
    if m.empty:
        raise AnalyticsError("positioning_matrix: no (entity, period) pairs shared by ours and competitors")
    m["_idx"] = 100 * m["_ours"] / m[price]
    wide = m.pivot_table(index=entity, columns=seller, values="_idx", aggfunc="median")
    lm = low.merge(o, on=[entity, period])
    wide["vs_lowest"] = (100 * lm["_ours"] / lm["_low"]).groupby(lm[entity]).median()
    wide.columns.name = None
    out = wide.reset_index().rename(columns={entity: "key"})
    out.insert(0, "level", entity)
    parts = [out]
    geo = lambda s: float(np.exp(np.log(s.dropna()).mean())) if s.notna().any() else np.nan  # noqa: E731
    vals = [c for c in wide.columns]
    if group:
        g = o.drop_duplicates(entity).set_index(entity)[group]
        gw = wide.join(g).groupby(group)[vals].agg(geo).reset_index().rename(columns={group: "key"})
        gw.insert(0, "level", group)
        parts.append(gw)
    allrow = pd.DataFrame([{"level": "all", "key": "ALL", **{v: geo(wide[v]) for v in vals}}])
    parts.append(allrow)
    return pd.concat(parts, ignore_index=True)


def price_leadership(
    prices: pd.DataFrame,
    follow_days: int = 3,
    tol: float = 0.005,
    keys: Keys = KEYS,
) -> pd.DataFrame:
    """Per seller: share of (entity, period) slots where it has the lowest price (ties count for
    each tied seller), mean premium over the lowest, and price leadership — how many of its price
    cuts were followed by another seller's cut on the same entity within `follow_days`.
    """
    entity, period, seller, price = keys.all()
    _need(prices, [entity, period, seller, price], "price_leadership")
    p = prices[[entity, period, seller, price]].dropna(subset=[price]).copy()
    if p.empty:
        raise AnalyticsError("price_leadership: no prices")
    low = p.groupby([entity, period])[price].transform("min")
    n_sellers = p.groupby([entity, period])[seller].transform("nunique")
    p = p[n_sellers > 1]
    low = low[n_sellers > 1]
    p["_lowest"] = p[price] <= low * (1 + tol)
    p["_premium"] = p[price] / low - 1
    out = p.groupby(seller).agg(
        slots=("_lowest", "size"), share_lowest=("_lowest", "mean"), mean_premium=("_premium", "mean")
    )
    # leadership: price cuts and whether others followed
    p = p.sort_values([entity, seller, period])
    p["_chg"] = p.groupby([entity, seller])[price].pct_change()
    cuts = p[p["_chg"] < -tol][[entity, seller, period]]
    led: dict = {}
    followed: dict = {}
    per = pd.to_datetime(cuts[period]) if not pd.api.types.is_numeric_dtype(cuts[period]) else cuts[period]
    cuts = cuts.assign(_t=per)
    for _ent, grp in cuts.groupby(entity):
        t = grp["_t"].to_numpy()
        s = grp[seller].to_numpy()
        for i in range(len(grp)):
            dt = (t - t[i]) / (np.timedelta64(1, "D") if np.issubdtype(t.dtype, np.datetime64) else 1)
            f = (dt > 0) & (dt <= follow_days) & (s != s[i])
            led[s[i]] = led.get(s[i], 0) + 1
            followed[s[i]] = followed.get(s[i], 0) + int(f.any())
    out["price_cuts"] = pd.Series(led).reindex(out.index).fillna(0).astype(int)
    out["cuts_followed"] = pd.Series(followed).reindex(out.index).fillna(0).astype(int)
    out["followed_share"] = np.where(
        out["price_cuts"] > 0, out["cuts_followed"] / out["price_cuts"].clip(lower=1), np.nan
    )
    return out.reset_index().sort_values("share_lowest", ascending=False).reset_index(drop=True)


def market_share(
    sales: pd.DataFrame,
    seller: str,
    quantity: str,
    revenue: str | None = None,
    group: str | None = None,
) -> pd.DataFrame:
    """Unit (and revenue) share of each seller, overall or within each `group` (e.g. category)."""
    _need(sales, [seller, quantity, revenue, group], "market_share")
    keys = [group, seller] if group else [seller]
    agg = {quantity: "sum"} | ({revenue: "sum"} if revenue else {})
    t = sales.groupby(keys, dropna=False).agg(agg).reset_index()
    by = t.groupby(group)[quantity] if group else t[quantity]
    t["unit_share"] = t[quantity] / (by.transform("sum") if group else by.sum())
    if revenue:
        rb = t.groupby(group)[revenue] if group else t[revenue]
        t["revenue_share"] = t[revenue] / (rb.transform("sum") if group else rb.sum())
    return t.sort_values(keys[:-1] + ["unit_share"], ascending=[True] * (len(keys) - 1) + [False]).reset_index(
        drop=True
    )


def promotion_events(
    panel: pd.DataFrame,
    entity: str,
    period: str,
    quantity: str,
    promo: str,
    price: str | None = None,
    pre: int = 14,
    post: int = 7,
    min_baseline: int = 5,
) -> pd.DataFrame:
    """Promotion effectiveness per promotion spell (consecutive promo periods of one entity).

    Counterfactual baseline = mean units on the non-promo periods in the `pre` periods before the
    spell, scaled by the entity's day-of-week profile when `period` is daily dates. Reports lift
    (%), incremental units, incremental revenue (actual revenue minus baseline units at the
    pre-promo regular price, needs `price`) and the post-promotion dip over `post` periods after.
    """
    _need(panel, [entity, period, quantity, promo, price], "promotion_events")
    rows = []
    for key, g in panel.sort_values([entity, period]).groupby(entity, sort=True):
        g = g.reset_index(drop=True)
        pr = g[promo].fillna(False).astype(bool).to_numpy()
        q = pd.to_numeric(g[quantity], errors="coerce").to_numpy(float)
        daily = pd.api.types.is_datetime64_any_dtype(g[period])
        if daily and len(g) >= 14:
            dow = g[period].dt.dayofweek.to_numpy()
            base_rows = ~pr
            prof = pd.Series(q[base_rows]).groupby(dow[base_rows]).mean()
            prof = (prof / prof.mean()).reindex(range(7)).fillna(1.0).to_numpy()
            factor = prof[dow]
        else:
            factor = np.ones(len(g))
        starts = np.flatnonzero(pr & ~np.r_[False, pr[:-1]])
        for s in starts:
            e = s
            while e + 1 < len(g) and pr[e + 1]:
                e += 1
            lo = max(0, int(s) - pre)
            win = np.arange(lo, s)
            win = win[~pr[win]]
            if len(win) < min_baseline:
                continue
            base_level = float(np.nanmean(q[win] / factor[win]))
            during = np.arange(s, e + 1)
            base = base_level * factor[during]
            inc_units = float(np.nansum(q[during] - base))
            row = dict(
                entity=key,
                start=g.loc[s, period],
                end=g.loc[e, period],
                periods=len(during),
                units=float(np.nansum(q[during])),
                baseline_units=float(base.sum()),
                lift=float(np.nansum(q[during]) / base.sum() - 1) if base.sum() > 0 else np.nan,
                incremental_units=inc_units,
            )
            if price:
                pv = pd.to_numeric(g[price], errors="coerce").to_numpy(float)
                regular = float(np.nanmedian(pv[win]))
                row["promo_price"] = float(np.nanmean(pv[during]))
                row["regular_price"] = regular
                row["discount"] = 1 - row["promo_price"] / regular
                row["incremental_revenue"] = float(np.nansum(q[during] * pv[during]) - base.sum() * regular)
            after = np.arange(e + 1, min(len(g), int(e) + 1 + post))
            after = after[~pr[after]] if len(after) else after
            if len(after):
                row["post_units"] = float(np.nansum(q[after]))
                row["post_baseline"] = float((base_level * factor[after]).sum())
                row["post_dip"] = (
                    float(row["post_units"] / row["post_baseline"] - 1) if row["post_baseline"] else np.nan
                )
            else:
                row.update(post_units=np.nan, post_baseline=np.nan, post_dip=np.nan)
            rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty:
        out = out.rename(columns={"entity": entity})
    return out


def promotion_summary(events: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Per entity: number of promotions, mean lift, total incremental units/revenue, mean post dip."""
    if events.empty:
        return pd.DataFrame(
            columns=[entity, "promotions", "mean_lift", "incremental_units", "incremental_revenue", "mean_post_dip"]
        )
    agg = dict(
        promotions=("lift", "size"),
        mean_lift=("lift", "mean"),
        incremental_units=("incremental_units", "sum"),
        mean_post_dip=("post_dip", "mean"),
    )
    if "incremental_revenue" in events:
        agg["incremental_revenue"] = ("incremental_revenue", "sum")
    return events.groupby(entity).agg(**agg).reset_index()


def product_features(
    panel: pd.DataFrame,
    entity: str,
    period: str,
    quantity: str,
    elasticities: pd.DataFrame | None = None,
    elasticity_col: str = "elasticity",
    promo: str | None = None,
) -> pd.DataFrame:
    """Per-entity features for segmentation: price sensitivity and sales pattern."""
    _need(panel, [entity, period, quantity, promo], "product_features")
    g = panel.groupby(entity)
    q = pd.to_numeric(panel[quantity], errors="coerce")
    feats = pd.DataFrame(
        {
            "log_mean_units": np.log1p(q.groupby(panel[entity]).mean()),
            "units_cv": q.groupby(panel[entity]).std() / q.groupby(panel[entity]).mean(),
        }
    )
    if pd.api.types.is_datetime64_any_dtype(panel[period]):
        wk = panel[period].dt.dayofweek >= 5
        feats["weekend_share"] = q.where(wk, 0).groupby(panel[entity]).sum() / q.groupby(panel[entity]).sum()
    if promo:
        feats["promo_share"] = g[promo].mean().astype(float)
    if elasticities is not None:
        _need(elasticities, [entity, elasticity_col], "product_features(elasticities)")
        feats["elasticity"] = elasticities.set_index(entity)[elasticity_col]
    return feats.reset_index()


def segment_products(
    features: pd.DataFrame,
    entity: str,
    columns: Sequence[str] | None = None,
    n_segments: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """KMeans segments on standardised features; segments are named by their price sensitivity."""
    from sklearn.cluster import KMeans

    cols = list(columns) if columns else [c for c in features.columns if c != entity]
    _need(features, [entity, *cols], "segment_products")
    X = features[cols].astype(float)
    ok = X.notna().all(axis=1)
    if ok.sum() < n_segments:
        raise AnalyticsError(
            f"segment_products: {int(ok.sum())} entities with complete features for {n_segments} segments"
        )
    Z = (X[ok] - X[ok].mean()) / X[ok].std(ddof=0).replace(0, 1)
    km = KMeans(n_clusters=n_segments, n_init=10, random_state=seed).fit(Z.to_numpy())
    out = features.copy()
    out["segment"] = pd.Series(km.labels_, index=X[ok].index).reindex(out.index)
    if "elasticity" in cols:
        order = out.groupby("segment")["elasticity"].mean().sort_values().index.tolist()
        names = {
            s: (
                "most price-sensitive"
                if i == 0
                else "least price-sensitive"
                if i == len(order) - 1
                else f"price-sensitive #{i + 1}"
            )
            for i, s in enumerate(order)
        }
        out["segment_name"] = out["segment"].map(names)
    return out
