# %% [markdown]
# # 3 · Match
# > Link each competitor listing to our catalogue: identical GTINs first, then fuzzy titles.

# %% tags=["parameters"]
upstream = ["world", "clean"]
product = None
source = "demo"

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("match", globals())

# %% [markdown]
# The learned matcher is trained on labelled pairs. Demo source: the truth of an independently seeded demo
# world (never the world matched here) plus every confirmation/rejection stored by the review app. Live
# source: this data's own pairs: stored labels, and identifier pairs (a listing whose GTIN, else brand + MPN,
# names exactly one product; fitted without the identifier features, so it learns the title, brand and size
# cues of listings that have none); until there are 100 such positives, demo-world pairs stand in. Stored
# labels also stand as decisions: confirmed pairs are kept, rejected pairs never come back. On the live
# source a watch imported with a sku is such a decision too.

# %%
import pandas as pd

from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline

listings = pd.read_parquet(upstream["clean"]["listings"])
products = pipeline.read_catalogue(upstream["world"]["catalogue"])
matches, model, stored = pipeline.match_stage(listings, products, source)
pipeline.save_frame(matches, product["matches"])
report.table({"stored labels": 0 if stored is None else len(stored),
              **({"learned model": "none (GTIN + rules at 0.75, the rest to review)"} if model is None else {
                  "training pairs": str(getattr(model, "sources", None) or model.n_pairs), "auto threshold": round(model.threshold, 3),
                  "review from": round(model.review_low, 3), "held-out check": str(model.holdout)})})

# %% [markdown]
# ## Listings that match nothing, in our categories
# A text classifier trained on our own catalogue's titles puts each unmatched listing in one of our categories
# (or none, below the confidence its held-out split needs for 90% precision).

# %%
from priceintel.match.categorize import UNMATCHED_COLUMNS, CategoryError, categorize_unmatched

try:
    categories = categorize_unmatched(listings, products, matches)
except CategoryError as exc:  # e.g. a catalogue without categories
    print(f"unmatched listings not categorised: {exc}")
    categories = pd.DataFrame(columns=UNMATCHED_COLUMNS)
pipeline.save_frame(categories, product["categories"])
categories.groupby("category", dropna=False).size().rename("listings").to_frame() if len(categories) else "none"

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
