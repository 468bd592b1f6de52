"""Elasticity benchmark: recovery of the demo world's true elasticities, held-out demand forecasts,
recommendation quality under the true demand, and Dominick's orange juice beside published values.

Writes reports/benchmarks/elasticity.json.  Usage: python benchmarks/bench_elasticity.py [--quick]
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from priceintel import config
from priceintel.demo import world as demo
from priceintel.pricing import recommend as pricing
from priceintel.pricing.elasticity import compare_specifications, cross_price_matrix, fit_demand, with_competitor_prices
from _common import write_results  # noqa: E402  (benchmarks/ is on sys.path when run as a script)


def _panel(seed: int, n: int, days: int):
    w = demo.generate_world(n_products=n, n_days=days, seed=seed)
    comp = w.prices.merge(w.truth_matches.dropna(subset=["sku"]), on=["retailer", "item_id"])
    panel, cols = with_competitor_prices(w.sales, comp)
    return w, panel.merge(w.products[["sku", "category", "unit_cost", "map_price"]], on="sku"), cols


def _score(est: pd.DataFrame, col: str, lo: str, hi: str) -> dict:
    err = (est[col] - est["own_elasticity"]).abs()
    cov = (est[lo] <= est["own_elasticity"]) & (est["own_elasticity"] <= est[hi])
    return {"products": int(est[col].notna().sum()), "mae": float(err.mean()), "max_abs_error": float(err.max()),
            "ci95_coverage": float(cov.mean())}


def demo_world(seeds, n, days) -> dict:
    """Own/cross recovery, sparse-product pooling, forecasts and recommendations over several worlds."""
    own, pois, sparse_raw, fc, reco, fit_s = [], [], [], [], [], []
    for seed in seeds:
        w, panel, cols = _panel(seed, n, days)
        t0 = time.perf_counter()
        m = fit_demand(panel, "sku", "price", "units", period="ds", cross_prices=["comp_min"], calendar=["dow"],
                       category="category")
        fit_s.append(time.perf_counter() - t0)
        est = m.estimates.merge(w.truth_elasticities, on="sku")
        own.append(est.assign(seed=seed))
        mp = fit_demand(panel, "sku", "price", "units", period="ds", cross_prices=["comp_min"], calendar=["dow"],
                        method="poisson")
        pois.append(mp.estimates.merge(w.truth_elasticities, on="sku"))
        # sparse products: every other product keeps only its first 14 days
        skus = sorted(panel["sku"].unique())
        sp = set(skus[::2])
        thin = panel[~panel["sku"].isin(sp) | (panel["ds"] < panel["ds"].min() + pd.Timedelta(days=14))]
        ms = fit_demand(thin, "sku", "price", "units", period="ds", log_controls=["comp_min"], calendar=["dow"],
                        category="category")
        es = ms.estimates.merge(w.truth_elasticities, on="sku")
        sparse_raw.append(es[es["sku"].isin(sp)])
        # held-out forecast: fit on all but the last 20 days, predict them from the planned (actual) prices
        cut = panel["ds"].max() - pd.Timedelta(days=20)
        train, test = panel[panel["ds"] <= cut], panel[panel["ds"] > cut]
        mf = fit_demand(train, "sku", "price", "units", period="ds", log_controls=["comp_min"], calendar=["dow"])
        test = test[test["sku"].isin(mf.fits)]
        pred = mf.predict(test, level=0.9)
        naive = test["sku"].map(train[train["ds"] > cut - pd.Timedelta(days=14)].groupby("sku")["units"].mean())
        fc.append(pd.DataFrame({"y": test["units"], "model": pred["units"], "lo": pred["units_lo"],
                                "hi": pred["units_hi"], "naive": naive}))
        # recommendations judged under the TRUE demand curve: profit ratio vs keeping the current price
        truth = w.truth_elasticities.set_index("sku")["own_elasticity"]
        regular = pricing.current_regular_price(panel)
        for sku, g in panel.groupby("sku"):
            if sku not in m.fits:
                continue
            last = g.sort_values("ds").iloc[-1]
            cur = float(regular[sku])
            c = pricing.Constraints(unit_cost=float(last["unit_cost"]), current_price=cur,
                                    map_price=None if pd.isna(last["map_price"]) else float(last["map_price"]),
                                    max_change=0.15)
            r = pricing.recommend_for_model(m, sku, c)
            e = truth[sku]
            prof = lambda p: (p - c.unit_cost) * (p / cur) ** e  # noqa: E731
            p_star = float(np.clip(c.unit_cost * e / (1 + e), *r.band))
            reco.append({"uplift": prof(r.price) / prof(cur) - 1 if prof(cur) > 0 else np.nan,
                         "oracle_uplift": prof(p_star) / prof(cur) - 1 if prof(cur) > 0 else np.nan,
                         "price_gap_to_oracle": abs(r.price / p_star - 1)})
    own, pois = pd.concat(own), pd.concat(pois)
    sparse = pd.concat(sparse_raw)
    fc = pd.concat(fc)
    reco = pd.DataFrame(reco).dropna()
    return {
        "worlds": {"seeds": list(seeds), "n_products": n, "n_days": days},
        "own_price_ols": _score(own, "elasticity", "ci_lo", "ci_hi"),
        "own_price_ols_category_pooled": _score(own, "elasticity_pooled", "ci_lo_pooled", "ci_hi_pooled"),
        "own_price_poisson": _score(pois, "elasticity", "ci_lo", "ci_hi"),
        "own_price_by_seed": {int(s): _score(g, "elasticity", "ci_lo", "ci_hi") for s, g in own.groupby("seed")},
        "cross_price_vs_lowest_competitor": {
            "mae": float((own["cross[comp_min]"] - own["cross_elasticity"]).abs().mean()),
            "truth_range": [0.1, 0.8]},
        "sparse_products_14_days": {
            "what": "every other product keeps only its first 14 days; scores on those sparse products",
            "identified_raw": _score(sparse[sparse["identified"]], "elasticity", "ci_lo", "ci_hi"),
            "identified_pooled": _score(sparse[sparse["identified"]], "elasticity_pooled", "ci_lo_pooled",
                                        "ci_hi_pooled"),
            "not_identified_pooled_mean": _score(sparse[~sparse["identified"]], "elasticity_pooled",
                                                 "ci_lo_pooled", "ci_hi_pooled"),
            "not_identified": int((~sparse["identified"]).sum())},
        "forecast_units_holdout": {
            "split": "per world: fit on days 1..n-20, predict the last 20 days from their actual prices",
            "rows": int(len(fc)), "mae_model": float((fc["model"] - fc["y"]).abs().mean()),
            "mae_naive_mean_last_14d": float((fc["naive"] - fc["y"]).abs().mean()),
            "pi90_coverage": float(((fc["lo"] <= fc["y"]) & (fc["y"] <= fc["hi"])).mean())},
        "recommendation_under_true_demand": {
            "constraints": "unit cost, MAP, max change 15% from the last regular price",
            "products": int(len(reco)), "mean_profit_uplift": float(reco["uplift"].mean()),
            "oracle_mean_profit_uplift": float(reco["oracle_uplift"].mean()),
            "share_with_uplift_ge_0": float((reco["uplift"] >= -1e-9).mean()),
            "median_price_gap_to_oracle": float(reco["price_gap_to_oracle"].median())},
        "fit_seconds_per_world": float(np.mean(fit_s)),
    }


def scaling(n: int, days: int) -> dict:
    """Wall time of one per-product fit over a larger catalogue."""
    w, panel, _ = _panel(5, n, days)
    t0 = time.perf_counter()
    m = fit_demand(panel, "sku", "price", "units", period="ds", log_controls=["comp_min"], calendar=["dow"],
                   category="category")
    return {"n_products": n, "n_days": days, "rows": int(len(panel)), "seconds": time.perf_counter() - t0,
            "identified": int(m.estimates["identified"].sum())}


def oj() -> dict:
    """Dominick's OJ: specifications beside the published values, and the cross-price matrix."""
    path = config.shared_data_dir() / "oj" / "oj_store_week.csv"
    if not path.exists():
        return {"skipped": f"{path} not found"}
    df = pd.read_csv(path)
    t0 = time.perf_counter()
    table = compare_specifications(df, "price", "sales", {
        "pooled": {}, "pooled+brand": {"fixed_effects": ["brand"]},
        "pooled+brand+feat+store": {"controls": ["feat"], "fixed_effects": ["brand", "store"], "cluster": "store"},
        "brand": {"by": "brand"},
        "brand*feat": {"by": "brand", "controls": ["feat"], "interactions": ["feat"]},
        "brand+feat+store": {"by": "brand", "controls": ["feat"], "fixed_effects": ["store"], "cluster": "store"},
    })
    cross = cross_price_matrix(df, "brand", ["store", "week"], "price", "sales", controls=["feat"],
                               fixed_effects=["store"], cluster="store")
    published = {"pooled|all": -1.60, "pooled+brand|all": -3.13869, "brand*feat|dominicks": -2.77415,
                 "brand*feat|minute.maid": -1.99, "brand*feat|tropicana": -2.04}
    published_feat = {"dominicks": -3.25, "minute.maid": -3.57, "tropicana": -3.50}
    rows = []
    for r in table.to_dict("records"):
        key = f"{r['spec']}|{r['group']}"
        row = {"spec": r["spec"], "group": r["group"], "elasticity": r["elasticity"], "se": r["se"],
               "published": published.get(key)}
        if r["spec"] == "brand*feat":
            row["elasticity_featured"] = r["elasticity[feat=1]"]
            row["published_featured"] = published_feat[r["group"]]
        rows.append(row)
    return {"rows": int(len(df)), "specifications": rows,
            "cross_price": cross[["demand", "price_of", "elasticity", "se"]].to_dict("records"),
            "seconds": time.perf_counter() - t0}


def main(quick: bool) -> dict:
    """Run every measurement; return the results dict."""
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    seeds = [42] if quick else [42, 1, 2, 3, 4, 5]
    out = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "demo_world": demo_world(seeds, 50, 90),
        "scaling": scaling(100 if quick else 1000, 90),
        "oj": oj(),
    }
    out["targets"] = {"own_mae_le_0.1": out["demo_world"]["own_price_ols"]["mae"] <= 0.1,
                      "ci95_coverage_in_0.90_0.99": 0.90 <= out["demo_world"]["own_price_ols"]["ci95_coverage"] <= 0.99}
    out["machine"] = {"loadavg_start": load0, "loadavg_end": os.getloadavg(), "cpus": os.cpu_count(),
                      "wall_seconds": time.perf_counter() - t0,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    return out


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = main(quick)
    dest = write_results("elasticity", res, quick)
    print(json.dumps({k: res[k] for k in ("targets", "machine")}, indent=2))
    print(f"wrote {dest}")
