# %% [markdown]
# # 6 · Evaluate
# > One page that scores every stage against held-out data or the demo world's ground truth.

# %% tags=["parameters"]
upstream = ["scrape", "clean", "match", "load", "model"]
product = None
data_dir = "data"

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab, the
# same values are read from pipeline.yaml + env.yaml, so every cell below runs as in the pipeline.
from priceintel.pipeline.lab import task_inputs

task_inputs("evaluate", globals())

# %%
from priceintel.pipeline import stages as pipeline

summary = pipeline.evaluate_stage(upstream, data_dir)
pipeline.save_json(summary, product["summary"])

# %% [markdown]
# ## Scrape and clean

# %%
summary["scrape"]

# %% [markdown]
# ## Matching (automatic matches vs the generator's truth)

# %%
summary["match"]

# %% [markdown]
# ## Forecasts (held-out days; the chosen model must beat the better naive baseline)

# %%
summary["forecast"]

# %% [markdown]
# ## Elasticity (recovered vs the generator's true elasticities)

# %%
summary["elasticity"]
