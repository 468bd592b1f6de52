# %% [markdown]
# # Pricing analytics on the demo world
# > Own- and cross-price elasticities with category pooling, price recommendations with reasons,
# > a demand forecast at planned prices, positioning, price leadership, promotions and segments.
#
# The demo world has a known truth (`truth_elasticities`), so every estimate is checked against it.

# %% tags=["parameters"]
n_products, n_days, seed = 50, 90, 42

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from priceintel.pricing import analytics
from priceintel.demo import world as demo
from priceintel.pricing import recommend as pricing
from priceintel.pricing.elasticity import fit_demand, with_competitor_prices

world = demo.generate_world(n_products=n_products, n_days=n_days, seed=seed)
comp = world.prices.merge(world.truth_matches.dropna(subset=["sku"]), on=["retailer", "item_id"])
panel, comp_cols = with_competitor_prices(world.sales, comp)
panel = panel.merge(world.products[["sku", "category", "unit_cost", "map_price"]], on="sku")
panel.head()

# %% [markdown]
# ## Own-price elasticity per product, pooled within its category
# log(units) ~ log(price) + log(cheapest competitor's price) + day of week; empirical-Bayes shrinkage
# toward the category mean. Diagnostics are in `note`.

# %%
model = fit_demand(panel, entity="sku", price="price", quantity="units", period="ds", cross_prices=["comp_min"],
                   calendar=["dow"], category="category")
est = model.estimates.merge(world.truth_elasticities, on="sku")
covered = (est["ci_lo"] <= est["own_elasticity"]) & (est["own_elasticity"] <= est["ci_hi"])
print(f"MAE vs truth {np.mean(np.abs(est['elasticity'] - est['own_elasticity'])):.3f}, "
      f"95% CI coverage {covered.mean():.0%} ({len(est)} products)")
est[["sku", "category", "elasticity", "ci_lo", "ci_hi", "elasticity_pooled", "shrink_weight", "own_elasticity",
     "note"]].round(3).head(10)

# %%
fig, ax = plt.subplots(figsize=(5, 5))
ax.errorbar(est["own_elasticity"], est["elasticity"], yerr=1.96 * est["se"], fmt="o", ms=3, alpha=0.7)
lims = [est["own_elasticity"].min() - 0.2, est["own_elasticity"].max() + 0.2]
ax.plot(lims, lims, "k--", lw=1)
ax.set_xlabel("true elasticity")
ax.set_ylabel("estimate (95% CI)")
fig.tight_layout()

# %% [markdown]
# ## Cross-price elasticity to each competitor
# Demand in this world reacts to the cheapest competitor; per-retailer coefficients split that effect.

# %%
per_comp = fit_demand(panel, entity="sku", price="price", quantity="units", period="ds", cross_prices=comp_cols,
                      calendar=["dow"]).estimates.merge(world.truth_elasticities, on="sku")
cross_cols = [f"cross[{c}]" for c in comp_cols]
print(f"cross-price vs the cheapest competitor: MAE {np.mean(np.abs(est['cross[comp_min]'] - est['cross_elasticity'])):.3f}")
per_comp[["sku", *cross_cols, "cross_elasticity"]].round(2).head(10)

# %% [markdown]
# ## Price recommendations
# Profit-maximising price within cost, MAP and a 15% maximum change, then the same with the rule
# "match the lowest competitor but stay above cost + 10%".

# %%
rows = []
regular = pricing.current_regular_price(panel)  # our last non-promotion price per sku
for sku, g in panel.groupby("sku"):
    if sku not in model.fits:
        continue
    g = g.sort_values("ds")
    last = g.iloc[-1]
    c = pricing.Constraints(unit_cost=last["unit_cost"], current_price=float(regular[sku]),
                            map_price=None if pd.isna(last["map_price"]) else last["map_price"], max_change=0.15,
                            competitor_prices={k[5:]: last[k] for k in comp_cols})
    model_rec = pricing.recommend_for_model(model, sku, c)
    rule_rec = pricing.recommend_for_model(model, sku, c, rule=pricing.MatchLowest(0.0, 0.10), mode="rule")
    rows.append({"sku": sku, "current": c.current_price, "model_price": model_rec.price,
                 "model_profit": model_rec.profit, "rule_price": rule_rec.price, "rule_profit": rule_rec.profit,
                 "reason": model_rec.reason})
recs = pd.DataFrame(rows)
print(recs.loc[0, "reason"])
recs.drop(columns="reason").round(2).head(10)

# %%
one = pricing.recommend_for_model(model, recs.loc[0, "sku"], pricing.Constraints(
    unit_cost=panel.loc[panel["sku"] == recs.loc[0, "sku"], "unit_cost"].iloc[0], current_price=recs.loc[0, "current"],
    max_change=0.3))
cv = one.curve
fig, ax = plt.subplots(figsize=(7, 3))
ax.fill_between(cv["price"], cv["profit_lo"], cv["profit_hi"], alpha=0.2)
ax.plot(cv["price"], cv["profit"], label="expected profit (90% band)")
ax.axvline(one.price, color="g", ls=":", label="recommended")
ax.set_xlabel("price")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Demand forecast at planned prices
# Held out: the last 14 days. The model is fitted on the rest and predicts units from the prices
# actually charged, against the mean of the previous 14 days.

# %%
cut = panel["ds"].max() - pd.Timedelta(days=14)
train, test = panel[panel["ds"] <= cut], panel[panel["ds"] > cut]
fm = fit_demand(train, "sku", "price", "units", period="ds", log_controls=["comp_min"], calendar=["dow"])
pred = fm.predict(test)
naive = test["sku"].map(train[train["ds"] > cut - pd.Timedelta(days=14)].groupby("sku")["units"].mean())
print(f"MAE model {np.mean(np.abs(pred['units'] - test['units'])):.1f} vs naive {np.mean(np.abs(naive - test['units'])):.1f}; "
      f"90% interval coverage {((pred['units_lo'] <= test['units']) & (test['units'] <= pred['units_hi'])).mean():.0%}")

# %% [markdown]
# ## Competitive positioning (price index: 100 = same price as the competitor)

# %%
pos = analytics.positioning_matrix(world.sales.merge(world.products[["sku", "category"]]), comp, group="category")
pos[pos["level"] != "sku"].round(1)

# %% [markdown]
# ## Price leadership: who is cheapest, and whose price cuts get followed

# %%
everyone = pd.concat([comp[["sku", "ds", "retailer", "price"]], world.sales[["sku", "ds", "price"]].assign(retailer="ours")])
analytics.price_leadership(everyone).round(3)

# %% [markdown]
# ## Promotion effectiveness
# Baseline = non-promo days in the 14 days before, scaled by the day-of-week profile.

# %%
events = analytics.promotion_events(world.sales, "sku", "ds", "units", "promo", price="price")
print(f"{len(events)} promotions: median lift {events['lift'].median():.0%}, "
      f"median post-promotion change {events['post_dip'].median():+.1%}")
analytics.promotion_summary(events, "sku").round(2).head(10)

# %% [markdown]
# ## Segments by price sensitivity and sales pattern

# %%
feats = analytics.product_features(world.sales, "sku", "ds", "units", model.estimates, promo="promo")
seg = analytics.segment_products(feats, "sku", n_segments=3)
seg.groupby("segment_name")[["elasticity", "log_mean_units", "units_cv", "weekend_share"]].mean().round(2)
