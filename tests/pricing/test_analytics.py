"""Competitive analytics: positioning, leadership, market share, promotions, segmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from priceintel.pricing.analytics import (
    AnalyticsError,
    market_share,
    positioning_matrix,
    price_leadership,
    product_features,
    promotion_events,
    promotion_summary,
    segment_products,
)

DAYS = pd.date_range("2026-07-01", periods=10)


def test_positioning_matrix_index_by_product_category_and_all():
    ours = pd.DataFrame({"sku": ["a"] * 10 + ["b"] * 10, "ds": list(DAYS) * 2, "price": [11.0] * 10 + [9.0] * 10,
                         "category": ["x"] * 10 + ["y"] * 10})
    comp = pd.concat([
        pd.DataFrame({"sku": s, "ds": DAYS, "retailer": r, "price": p})
        for s, r, p in [("a", "amazon", 10.0), ("a", "target", 11.0), ("b", "amazon", 10.0), ("b", "target", 9.0)]
    ])
    pm = positioning_matrix(ours, comp, group="category").set_index("key")
    assert pm.loc["a", "amazon"] == pytest.approx(110.0) and pm.loc["a", "target"] == pytest.approx(100.0)
    assert pm.loc["a", "vs_lowest"] == pytest.approx(110.0) and pm.loc["b", "vs_lowest"] == pytest.approx(100.0)
    assert pm.loc["y", "amazon"] == pytest.approx(90.0)
    assert pm.loc["ALL", "amazon"] == pytest.approx(np.sqrt(110 * 90))
    with pytest.raises(AnalyticsError, match="no .entity, period. pairs"):
        positioning_matrix(ours.assign(sku="zz"), comp)
    with pytest.raises(AnalyticsError, match="'price'"):
        positioning_matrix(ours.drop(columns="price"), comp)


def test_price_leadership_share_of_lowest_and_followed_cuts():
    # amazon cuts on day 3, walmart follows on day 4; target never lowest
    rows = []
    for i, d in enumerate(DAYS):
        rows += [("p", d, "amazon", 10.0 if i < 3 else 9.0), ("p", d, "walmart", 10.0 if i < 4 else 8.9),
                 ("p", d, "target", 11.0)]
    prices = pd.DataFrame(rows, columns=["sku", "ds", "retailer", "price"])
    out = price_leadership(prices).set_index("retailer")
    assert out.loc["target", "share_lowest"] == 0
    assert out.loc["amazon", "share_lowest"] == pytest.approx(0.4)  # days 0-2 tied, day 3 alone
    assert out.loc["walmart", "share_lowest"] == pytest.approx(0.9)
    assert out.loc["amazon", "price_cuts"] == 1 and out.loc["amazon", "cuts_followed"] == 1
    assert out.loc["walmart", "cuts_followed"] == 0
    with pytest.raises(AnalyticsError):
        price_leadership(prices.assign(price=np.nan))


def test_market_share_overall_and_by_group():
    s = pd.DataFrame({"seller": ["us", "them", "us", "them"], "cat": ["x", "x", "y", "y"],
                      "units": [30, 10, 5, 15], "rev": [300.0, 100.0, 50.0, 150.0]})
    overall = market_share(s, "seller", "units", "rev").set_index("seller")
    assert overall.loc["us", "unit_share"] == pytest.approx(35 / 60)
    by = market_share(s, "seller", "units", "rev", group="cat").set_index(["cat", "seller"])
    assert by.loc[("x", "us"), "unit_share"] == pytest.approx(0.75)
    assert by.loc[("y", "them"), "revenue_share"] == pytest.approx(0.75)


def test_promotion_lift_incremental_and_post_dip_are_recovered():
    rng = np.random.default_rng(0)
    n = 120
    ds = pd.date_range("2026-01-01", periods=n)
    dow = np.array([1.0, 0.9, 0.9, 1.0, 1.1, 1.3, 1.2])[ds.dayofweek]
    promo = np.zeros(n, bool)
    post = np.zeros(n, bool)
    for s in (30, 70):
        promo[s:s + 5] = True
        post[s + 5:s + 10] = True
    base = 100 * dow
    units = base * np.where(promo, 1.5, 1.0) * np.where(post, 0.8, 1.0) * np.exp(rng.normal(0, 0.02, n))
    price = np.where(promo, 8.0, 10.0)
    panel = pd.DataFrame({"sku": "a", "ds": ds, "units": units, "promo": promo, "price": price})
    ev = promotion_events(panel, "sku", "ds", "units", "promo", price="price", pre=21, post=5)
    assert len(ev) == 2
    assert ev["lift"].to_numpy() == pytest.approx([0.5, 0.5], abs=0.05)
    assert ev["post_dip"].to_numpy() == pytest.approx([-0.2, -0.2], abs=0.05)
    assert ev["discount"].to_numpy() == pytest.approx([0.2, 0.2])
    # incremental revenue: 1.5 * 8 - 10 = +2 per baseline unit
    assert (ev["incremental_revenue"] / ev["baseline_units"]).to_numpy() == pytest.approx([2.0, 2.0], abs=0.3)
    summ = promotion_summary(ev, "sku")
    assert summ.loc[0, "promotions"] == 2 and summ.loc[0, "incremental_units"] > 0
    assert promotion_summary(ev.iloc[0:0], "sku").empty


def test_segments_separate_price_sensitivity():
    rng = np.random.default_rng(1)
    rows, el = [], []
    for k in range(12):
        e = -1.2 if k < 6 else -3.2
        el.append({"sku": f"s{k}", "elasticity": e + rng.normal(0, 0.05)})
        rows.append(pd.DataFrame({"sku": f"s{k}", "ds": DAYS, "units": rng.poisson(50, 10), "promo": False}))
    panel = pd.concat(rows)
    feats = product_features(panel, "sku", "ds", "units", pd.DataFrame(el), promo="promo")
    assert {"log_mean_units", "units_cv", "weekend_share", "promo_share", "elasticity"} <= set(feats.columns)
    seg = segment_products(feats, "sku", columns=["elasticity", "log_mean_units"], n_segments=2)
    names = seg.set_index("sku")["segment_name"]
    assert (names[[f"s{k}" for k in range(6)]] == "least price-sensitive").all()
    assert (names[[f"s{k}" for k in range(6, 12)]] == "most price-sensitive").all()
    with pytest.raises(AnalyticsError, match="complete features"):
        segment_products(feats.head(1), "sku", n_segments=3)


@pytest.mark.slow
def test_pricing_analytics_notebook_renders(tmp_path):
    from priceintel import config
    from priceintel.pipeline.render import RenderError, render_notebook

    out = render_notebook(config.PROJ_ROOT / "notebooks" / "pricing-analytics.py", tmp_path / "pa.html",
                          parameters={"n_products": 12, "n_days": 60, "seed": 3})
    text = out.read_text()
    assert "MAE vs truth" in text and "Recommended $" in text and "promotions: median lift" in text
    assert "Traceback" not in text
    plain = tmp_path / "plain.py"
    plain.write_text("# %%\nx = 1\n")
    with pytest.raises(RenderError, match="parameters"):
        render_notebook(plain, tmp_path / "p.html", parameters={"x": 2})


def test_category_assortment_counts_unmatched_listings():
    from priceintel.pricing.analytics import ASSORTMENT_COLUMNS, category_assortment

    ours = pd.DataFrame({"sku": ["A", "B", "C"], "category": ["tea", "tea", "coffee"], "price": [4.0, 6.0, 10.0]})
    listings = pd.DataFrame({
        "retailer": ["x", "x", "x", "y", "y"],
        "category": ["tea", "tea", None, "coffee", "coffee"],
        "matched": [True, False, False, True, False],
        "price": [4.0, 6.0, 3.0, 8.0, 12.0],
    })
    out = category_assortment(ours, listings)
    assert list(out.columns) == ASSORTMENT_COLUMNS
    rows = {(r.category, r.retailer): r for r in out.itertuples()}
    tea = rows[("tea", "x")]
    assert (tea.listings, tea.matched, tea.unmatched, tea.their_median, tea.our_median) == (2, 1, 1, 5.0, 5.0)
    assert tea.median_index == 100.0
    assert rows[("coffee", "y")].median_index == 100.0 and rows[("(uncategorised)", "x")].unmatched == 1
    assert pd.isna(rows[("(uncategorised)", "x")].our_median)
    with pytest.raises(Exception, match="matched"):
        category_assortment(ours, listings.drop(columns=["matched"]))
