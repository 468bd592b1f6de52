# %% [markdown]
# # 3 · Match
# > Link each competitor listing to our catalogue: identical GTINs first, then fuzzy titles.

# %% tags=["parameters"]
upstream = ["clean"]
product = None
data_dir = "data"

# %%
import pandas as pd

from priceintel import match, pipeline

listings = pd.read_parquet(upstream["clean"]["listings"])
products = pipeline.read_catalogue(data_dir)
matches = match.match_listings(listings, products)
pipeline.save_frame(matches, product["matches"])
matches.groupby(["retailer", "method", "status"]).size().rename("listings").to_frame()

# %% [markdown]
# ## Accuracy against the demo world's ground truth
# Only automatic matches count as predictions; pairs in the review band wait for a person.

# %%
metrics = pipeline.match_metrics(matches, listings, data_dir)
pipeline.save_json(metrics, product["metrics"])
metrics
