# %% [markdown]
# # 1 · Scrape
# > Fetch every competitor product page for each day of the run, politely, and archive the raw pages.
#
# The demo storefronts are real HTTP servers on 127.0.0.1 (Amazon-like HTML price blocks,
# Walmart-like embedded JSON state, Target-like schema.org JSON-LD). Each response is archived
# under `data/raw/` before extraction, so any later stage can be replayed offline.

# %% tags=["parameters"]
upstream = ["world"]
product = None
data_dir = "data"
days = 90
world_start = "2026-07-01"
retailers = "amazon,walmart,target"
product_limit = 0
source = "demo"

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("scrape", globals())

# %%
from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline

params = pipeline.validate_params(
    data_dir=data_dir, days=days, world_start=world_start, retailers=retailers, product_limit=product_limit,
    source=source,
)
report.table({k: str(v) for k, v in vars(params).items()}, key="setting")

# %%
offers, errors, fetches = pipeline.scrape_stage(params, upstream["world"]["world"])
pipeline.save_frame(offers, product["offers"])
pipeline.save_frame(errors, product["errors"])
pipeline.save_frame(fetches, product["fetches"])
print(f"{len(offers):,} pages extracted, {len(errors):,} errors recorded")

# %% [markdown]
# ## What came back
# Pages per retailer and day, and every recorded error by kind (nothing is dropped silently).

# %%
pipeline.scrape_summary(offers, errors)

# %%
errors.groupby(["retailer", "kind"]).size().rename("errors").to_frame() if len(errors) else "no errors"
