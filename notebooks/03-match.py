# %% [markdown]
# # 3 · Match
# > Link each competitor listing to our catalogue: identical GTINs first, then fuzzy titles.

# %% tags=["parameters"]
upstream = ["clean"]
product = None
data_dir = "data"

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab, the
# same values are read from pipeline.yaml + env.yaml, so every cell below runs as in the pipeline.
from priceintel.pipeline.lab import task_inputs

task_inputs("match", globals())

# %% [markdown]
# The learned matcher is trained on labelled pairs: the truth of an independently seeded demo world
# (never the world matched here) plus every confirmation/rejection stored by the review app.
# Stored labels also stand as decisions: confirmed pairs are kept, rejected pairs never come back.

# %%
import pandas as pd

from priceintel.match import rules as match
from priceintel.pipeline import stages as pipeline
from priceintel.match import labels as match_labels
from priceintel.match import model as listing_model

listings = pd.read_parquet(upstream["clean"]["listings"])
products = pipeline.read_catalogue(data_dir)
stored = match_labels.stored_labels_or_none()
model = listing_model.pipeline_model(listings, products, stored)
matches = match.match_listings(listings, products, labels=stored, model=model)
pipeline.save_frame(matches, product["matches"])
{"stored_labels": 0 if stored is None else len(stored),
 "model": None if model is None else {"training_pairs": model.n_pairs, "auto_threshold": model.threshold,
                                      "review_from": model.review_low, "holdout": model.holdout}}

# %%
matches.groupby(["retailer", "method", "status"]).size().rename("listings").to_frame()

# %% [markdown]
# ## Accuracy against the demo world's ground truth
# Only automatic matches count as predictions; pairs in the review band wait for a person.

# %%
metrics = pipeline.match_metrics(matches, listings, data_dir)
if metrics and model is not None:
    metrics["split"] = "all demo listings vs generator truth; model trained on a separately seeded demo world"
pipeline.save_json(metrics, product["metrics"])
metrics
