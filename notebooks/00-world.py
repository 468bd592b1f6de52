# %% [markdown]
# # 0 · World
# > The world the run watches: our catalogue and sales, and the shops whose pages the next task scrapes.
#
# With `source: demo` this is the deterministic demo world (same parameters, same bytes): our catalogue with
# costs and MAP, our daily sales, three shops listing our products under their own titles (plus distractors),
# and the generator's truth (which listing is which product, the true elasticities) that later tasks score
# against. Its folder, catalogue and sales are this task's declared products: later tasks take them from
# `upstream["world"]`, never from a literal path.

# %% tags=["parameters"]
upstream = None
product = None
data_dir = "data"
seed = 42
n_products = 50
days = 90
world_start = "2026-07-01"
source = "demo"

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab, the
# same values are read from pipeline.yaml + env.yaml, so every cell below runs as in the pipeline.
from priceintel.pipeline.lab import task_inputs

task_inputs("world", globals())

# %%
import pandas as pd

from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline

params = pipeline.validate_params(
    data_dir=data_dir, seed=seed, n_products=n_products, days=days, world_start=world_start,
    retailers="amazon,walmart,target", source=source,
)
world_dir = pipeline.world_stage(params)
catalogue = pipeline.read_catalogue(product["catalogue"])
sales = pd.read_csv(product["sales"], parse_dates=["ds"])
report.table({"source": source, "folder": str(world_dir), "products": len(catalogue),
              "categories": catalogue["category"].nunique(), "sales days (in this world)": sales["ds"].nunique(),
              "first day": str(sales["ds"].min().date()) if len(sales) else "-",
              "last day": str(sales["ds"].max().date()) if len(sales) else "-"})

# %% [markdown]
# ## Our catalogue (first rows)

# %%
report.frame(catalogue.head(10))
