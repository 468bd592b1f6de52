# %% [markdown]
# # 4b · dbt marts
# > Build the dbt project beside the pipeline (`dbt/`): staging models over the star schema, then the marts
# > (price history, price index, positioning, promotions) and every schema and data test; render the dbt docs.
#
# dbt runs in this process as the database owner and builds every tenant's marts; each mart carries `tenant_id`
# under row-level security, so what this notebook reads below is the run's tenant's (docs/dbt.md).

# %% tags=["parameters"]
upstream = ["load"]
product = None
data_dir = "data"

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("dbt", globals())

# %%
from pathlib import Path

from priceintel.pipeline import dbt, report
from priceintel.pipeline import stages as pipeline

summary = dbt.dbt_stage(data_dir, docs_dir=Path(product["docs"]).parent)
pipeline.save_json(summary, product["results"])
report.table(summary["marts"], key="mart", value="rows")

# %% [markdown]
# ## Models and tests
# Every node dbt ran, by type and outcome; a failing model or test stops the task with its name.

# %%
report.table({f"{kind} {status}": n for kind, counts in summary["counts"].items() for status, n in counts.items()},
             key="nodes", value="count")

# %% [markdown]
# ## Positioning: where we are the cheapest
# The share of (product, day) pairs in each position against the matched competitors, per category.

# %%
from priceintel.db.engine import get_engine

positioning = dbt.read_mart(get_engine(), "mart_price_positioning")
(positioning.groupby("category")["position"].value_counts(normalize=True).unstack(fill_value=0).round(3)
 if len(positioning) else "no positioning rows yet")

# %% [markdown]
# ## Price index by category and retailer
# 100 = each group's first priced day (Jevons: geometric mean of the listings' price relatives).

# %%
index = dbt.read_mart(get_engine(), "mart_price_index")
(index.pivot_table(index="ds", columns=["category", "retailer"], values="price_index").tail(10).round(1)
 if len(index) else "no price index rows yet")

# %% [markdown]
# ## Promotion episodes
# Competitor promotions: runs of consecutive days on promotion, their length and depth below the regular price.

# %%
promotions = dbt.read_mart(get_engine(), "mart_promotions")
(promotions.groupby("retailer").agg(episodes=("episode_id", "count"), mean_days=("days", "mean"),
                                    mean_depth_pct=("depth_pct", "mean")).round(2)
 if len(promotions) else "no promotion episodes yet")
