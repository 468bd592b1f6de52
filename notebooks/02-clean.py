# %% [markdown]
# # 2 · Clean
# > Parse prices and currencies into the canonical long frame: one row per listing per day.

# %% tags=["parameters"]
upstream = ["scrape"]
product = None

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("clean", globals())

# %%
import pandas as pd

from priceintel import clean
from priceintel.pipeline import stages as pipeline

offers = pd.read_parquet(upstream["scrape"]["offers"])
observations, errors = clean.offers_to_observations(offers)
listings = clean.listings_from_observations(observations)
pipeline.save_frame(observations, product["observations"])
pipeline.save_frame(listings, product["listings"])
pipeline.save_frame(errors, product["errors"])
print(f"{len(observations):,} observations, {len(listings):,} listings, {len(errors):,} rows rejected")

# %% [markdown]
# ## Rejected rows
# A page without a price, an unknown currency or a missing id is kept here with its reason,
# never stored as a price.

# %%
errors.head(20) if len(errors) else "no rejected rows"

# %%
ax = observations.groupby(["ds", "retailer"]).price.median().unstack().plot(
    figsize=(9, 3), title="Median observed price by retailer")
