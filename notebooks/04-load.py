# %% [markdown]
# # 4 · Load
# > Upsert dimensions and facts into the PostgreSQL star schema in one transaction.
#
# Every table is loaded through `COPY` into a staging table and an idempotent upsert:
# re-running the same day changes nothing.

# %% tags=["parameters"]
upstream = ["world", "scrape", "clean", "match"]
product = None
data_dir = "data"
full_reload = False  # True: load every observation again, not only those the warehouse lacks

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("load", globals())

# %%
from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline

receipt = pipeline.load_stage(upstream, data_dir, full_reload)
pipeline.save_json(receipt, product["receipt"])
report.table(receipt["loaded"], key="loaded", value="rows")

# %% [markdown]
# ## What the database holds now

# %%
report.table(receipt["table_counts"], key="table", value="rows")

# %% [markdown]
# ## Category positioning over each competitor's whole assortment
# Matched listings take our product's category; listings that match none of our products take the category the
# text classifier trained on our own titles gave them (the match task). `median_index` is 100 × our median price
# over their median price in the category: it also sees the products we do not sell, where the matched price
# index (pricing analytics) compares like with like.

# %%
from priceintel.db import queries
from priceintel.db.engine import get_engine
from priceintel.pricing import analytics

assortment = analytics.category_assortment(queries.our_category_prices(get_engine()), queries.category_listings(get_engine()))
assortment.round(2) if len(assortment) else "no competitor listings yet"
