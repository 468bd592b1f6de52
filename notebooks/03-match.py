# %% [markdown]
# # 3 · Match
# > Link each competitor listing to our catalogue: identical GTINs first, then fuzzy titles.

# %% tags=["parameters"]
upstream = ["world", "clean"]
product = None

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
from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline
from priceintel.match import labels as match_labels
from priceintel.match import model as listing_model

listings = pd.read_parquet(upstream["clean"]["listings"])
products = pipeline.read_catalogue(upstream["world"]["catalogue"])
stored = match_labels.stored_labels_or_none()
model = listing_model.pipeline_model(listings, products, stored)
matches = match.match_listings(listings, products, labels=stored, model=model)
pipeline.save_frame(matches, product["matches"])
report.table({"stored labels": 0 if stored is None else len(stored),
              **({"learned model": "none (rules only)"} if model is None else {
                  "training pairs": model.n_pairs, "auto threshold": round(model.threshold, 3),
                  "review from": round(model.review_low, 3), "held-out check": str(model.holdout)})})

# %%
matches.groupby(["retailer", "method", "status"]).size().rename("listings").to_frame()

# %% [markdown]
# ## Accuracy against the demo world's ground truth
# Only automatic matches count as predictions; pairs in the review band wait for a person.

# %%
metrics = pipeline.match_metrics(matches, listings, upstream["world"]["world"])
if metrics and model is not None:
    metrics["split"] = "all demo listings vs generator truth; model trained on a separately seeded demo world"
pipeline.save_json(metrics, product["metrics"])
report.goals({"match": metrics}, "match")
