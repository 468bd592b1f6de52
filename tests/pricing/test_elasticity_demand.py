"""fit_demand on any long panel: calendar/trend controls, cross prices, interactions, pooling, prediction."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from priceintel import config
from priceintel.pricing.demand_model import add_calendar, shrink_estimates
from priceintel.pricing.elasticity import (
    compare_specifications,
    cross_price_matrix,
    fit_demand,
    with_competitor_prices,
)
from priceintel.pricing.panel import ElasticityError

OJ_DIR = config.shared_data_dir() / "oj"


def _world_panel(n=30, days=90, seed=3):
    from priceintel.demo import world as demo

    w = demo.generate_world(n_products=n, n_days=days, seed=seed)
    comp = w.prices.merge(w.truth_matches.dropna(subset=["sku"]), on=["retailer", "item_id"])
    panel, cols = with_competitor_prices(w.sales, comp)
    return w, panel.merge(w.products[["sku", "category"]], on="sku"), cols


@pytest.fixture(scope="module")
def world_panel():
    return _world_panel()


def test_demo_world_own_and_cross_elasticities_recovered(world_panel):
    w, panel, cols = world_panel
    m = fit_demand(panel, entity="sku", price="price", quantity="units", period="ds",
                   cross_prices=["comp_min"], calendar=["dow"], category="category")
    est = m.estimates.merge(w.truth_elasticities, on="sku")
    assert est["identified"].all() and len(est) == 30
    err = (est["elasticity"] - est["own_elasticity"]).abs()
    assert err.mean() < 0.12
    cov = ((est["ci_lo_pooled"] <= est["own_elasticity"]) & (est["own_elasticity"] <= est["ci_hi_pooled"])).mean()
    assert cov >= 0.8
    cross_err = (est["cross[comp_min]"] - est["cross_elasticity"]).abs()
    assert cross_err.mean() < 0.2
    # per-competitor cross elasticities are reported for every retailer column
    m2 = fit_demand(panel, entity="sku", price="price", quantity="units", period="ds", cross_prices=cols,
                    calendar=["dow"])
    assert {f"cross[{c}]" for c in cols} <= set(m2.estimates.columns)
    assert m2.estimates[[f"cross[{c}]" for c in cols]].notna().any().all()


def test_poisson_method_keeps_zero_sales_and_predicts(world_panel):
    w, panel, _ = world_panel
    one = panel[panel["sku"] == panel["sku"].iloc[0]].copy()
    one.loc[one.index[:5], "units"] = 0
    m = fit_demand(one, "sku", "price", "units", period="ds", log_controls=["comp_min"], calendar=["dow"],
                   method="poisson")
    r = m.estimates.iloc[0]
    assert r["n"] == len(one) and r["identified"]
    truth = w.truth_elasticities.set_index("sku").loc[r["sku"], "own_elasticity"]
    assert r["ci_lo"] - 0.1 < truth < r["ci_hi"] + 0.1


def test_forecast_units_on_held_out_days_beats_naive_mean(world_panel):
    w, panel, _ = world_panel
    cut = panel["ds"].max() - pd.Timedelta(days=20)
    train, test = panel[panel["ds"] <= cut], panel[panel["ds"] > cut]
    m = fit_demand(train, "sku", "price", "units", period="ds", log_controls=["comp_min"], calendar=["dow"])
    pred = m.predict(test, level=0.9)
    mae = (pred["units"] - test["units"]).abs().mean()
    naive = test["sku"].map(train[train["ds"] > cut - pd.Timedelta(days=14)].groupby("sku")["units"].mean())
    assert mae < 0.6 * (naive - test["units"]).abs().mean()
    inside = ((pred["units_lo"] <= test["units"]) & (test["units"] <= pred["units_hi"])).mean()
    assert 0.75 <= inside <= 0.99
    with pytest.raises(ElasticityError, match="no fitted demand"):
        m.predict(test.assign(sku="nope"))
    with pytest.raises(ElasticityError, match="positive prices"):
        m.predict(test.assign(price=0.0))


def test_shrinkage_helps_sparse_products_and_fills_unidentified(world_panel):
    w, panel, _ = world_panel
    skus = sorted(panel["sku"].unique())
    sparse = set(skus[::2])
    keep = ~panel["sku"].isin(sparse) | (panel["ds"] < panel["ds"].min() + pd.Timedelta(days=12))
    thin = panel[keep].copy()
    flat = skus[1]
    thin.loc[thin["sku"] == flat, "price"] = 9.99
    thin["group"] = "all"
    m = fit_demand(thin, "sku", "price", "units", period="ds", log_controls=["comp_min"], category="group")
    est = m.estimates.merge(w.truth_elasticities, on="sku").set_index("sku")
    f = est.loc[flat]
    assert not f["identified"] and "price variation too small to identify" in f["note"]
    assert np.isfinite(f["elasticity_pooled"]) and "mean used" in f["pool_note"]
    sp = est.loc[sorted(sparse)]
    sp = sp[sp["identified"]]
    raw = (sp["elasticity"] - sp["own_elasticity"]).abs().mean()
    pooled = (sp["elasticity_pooled"] - sp["own_elasticity"]).abs().mean()
    assert pooled < raw
    assert (est["shrink_weight"].between(0, 1)).all()


def test_shrink_estimates_math_and_errors():
    est = pd.DataFrame({"elasticity": [-1.0, -2.0, -3.0, np.nan], "se": [0.1, 0.1, 2.0, np.nan],
                        "identified": [True, True, True, False]})
    out = shrink_estimates(est)
    # a noisy estimate is pulled much further toward the mean than a precise one
    assert out.loc[2, "shrink_weight"] < out.loc[0, "shrink_weight"]
    assert abs(out.loc[2, "elasticity_pooled"] - out.loc[2, "pool_mean"]) < 1.0
    assert out.loc[3, "elasticity_pooled"] == pytest.approx(out.loc[3, "pool_mean"])
    with pytest.raises(ElasticityError, match="at least 2"):
        shrink_estimates(est.iloc[[0, 3]])


def test_calendar_trend_and_errors():
    df = pd.DataFrame({"ds": pd.date_range("2026-01-01", periods=10), "w": range(10)})
    out, fes, ctrls = add_calendar(df, "ds", ["dow", "month"], trend=True)
    assert fes == ["_dow", "_month"] and ctrls == ["_trend"] and out["_trend"].iloc[-1] == 1.0
    out2, _, c2 = add_calendar(df, "w", (), trend=True)
    assert out2["_trend"].max() == 1.0
    with pytest.raises(ElasticityError, match="not a date"):
        add_calendar(pd.DataFrame({"w": ["a", "b"]}), "w", ["dow"])
    with pytest.raises(ElasticityError, match="unknown calendar"):
        add_calendar(df, "ds", ["hour"])
    panel = pd.DataFrame({"e": "a", "p": [1.0, 2.0, 3.0, 4.0] * 5, "q": [4.0, 3.0, 2.0, 1.0] * 5,
                          "c": [1.0, 0.0, 2.0, 3.0] * 5})
    with pytest.raises(ElasticityError, match="method"):
        fit_demand(panel, "e", "p", "q", method="lasso")
    with pytest.raises(ElasticityError, match="need the `period`"):
        fit_demand(panel, "e", "p", "q", trend=True)
    with pytest.raises(ElasticityError, match="non-positive"):
        fit_demand(panel, "e", "p", "q", log_controls=["c"])
    with pytest.raises(ElasticityError, match=r"\['nope'\]"):
        fit_demand(panel, "e", "p", "nope")


def test_trend_and_seasonality_controls_remove_confounding():
    # price drifts down while demand trends up for other reasons: without a trend the fit is biased
    rng = np.random.default_rng(4)
    n = 200
    ds = pd.date_range("2026-01-01", periods=n)
    t = np.arange(n) / n
    lp = -0.3 * t + rng.normal(0, 0.05, n)
    lq = 4 - 1.5 * lp + 1.0 * t + rng.normal(0, 0.05, n)
    panel = pd.DataFrame({"item": "x", "day": ds, "price": np.exp(lp), "qty": np.exp(lq)})
    plain = fit_demand(panel, "item", "price", "qty").estimates.iloc[0]
    trended = fit_demand(panel, "item", "price", "qty", period="day", trend=True).estimates.iloc[0]
    assert abs(trended["elasticity"] + 1.5) < 0.15 < abs(plain["elasticity"] + 1.5)
    m = fit_demand(panel, "item", "price", "qty", period="day", trend=True)
    pred = m.predict(panel.tail(3))
    assert np.allclose(pred["units"], panel["qty"].tail(3), rtol=0.2)


def test_oj_reproduces_published_three_way_model_and_cross_prices_are_substitutes():
    oj = pd.read_csv(OJ_DIR / "oj_store_week.csv")
    t = compare_specifications(oj, "price", "sales", {
        "pooled": dict(fixed_effects=["brand"]),
        "brand x feat": dict(by="brand", controls=["feat"], interactions=["feat"]),
    }).set_index(["spec", "group"])
    assert t.loc[("pooled", "all"), "elasticity"] == pytest.approx(-3.13869, abs=1e-4)
    published = {"dominicks": (-2.77415, -3.25), "minute.maid": (-1.99, -3.57), "tropicana": (-2.04, -3.50)}
    for brand, (plain, feat) in published.items():
        assert t.loc[("brand x feat", brand), "elasticity"] == pytest.approx(plain, abs=0.006)
        assert t.loc[("brand x feat", brand), "elasticity[feat=1]"] == pytest.approx(feat, abs=0.006)
    cx = cross_price_matrix(oj, "brand", ["store", "week"], "price", "sales", controls=["feat"])
    own = cx[cx["demand"] == cx["price_of"]]
    cross = cx[cx["demand"] != cx["price_of"]]
    assert len(own) == 3 and len(cross) == 6 and (own["elasticity"] < -1.5).all()
    # Minute Maid demand rises with both rivals' prices (substitutes)
    mm = cross[cross["demand"] == "minute.maid"]
    assert (mm["ci_lo"] > 0).all()
    with pytest.raises(ElasticityError, match="more than one row"):
        cross_price_matrix(oj, "brand", ["week"], "price", "sales")


@pytest.mark.slow
def test_oj_notebook_renders_to_html(tmp_path):
    from priceintel.pipeline.render import RenderError, main, render_notebook

    src = config.PROJ_ROOT / "notebooks" / "oj-elasticity.py"
    out = render_notebook(src, tmp_path / "oj.html")
    text = out.read_text()
    assert "Cross-price elasticities" in text and "-3.139" in text and "Traceback" not in text
    bad = tmp_path / "bad.py"
    bad.write_text("# %%\nraise ValueError('boom in cell')\n")
    with pytest.raises(RenderError, match="boom in cell"):
        render_notebook(bad, tmp_path / "bad.html")
    with pytest.raises(RenderError, match="not found"):
        render_notebook(tmp_path / "missing.py", tmp_path / "x.html")
    assert main(["only-one-arg"]) == 2
    assert main([str(tmp_path / "missing.py"), str(tmp_path / "x.html")]) == 2
