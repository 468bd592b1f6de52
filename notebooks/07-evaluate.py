# %% [markdown]
# # 7 · Evaluate
# > One page that scores every stage against held-out data or the demo world's ground truth.

# %% tags=["parameters"]
upstream = ["world", "scrape", "clean", "match", "load", "forecast", "elasticity"]
product = None

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("evaluate", globals())

# %%
from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline

summary = pipeline.evaluate_stage(upstream)
pipeline.save_json(summary, product["summary"]);

# %% [markdown]
# ## Scrape and clean
# Every demo page must be extracted; a page without a price, an unknown currency or a missing id is kept with
# its reason in the stage's errors, never stored as a price.

# %%
report.goals(summary, "scrape")

# %%
report.goals(summary, "clean")

# %%
report.chart(summary, "scrape")

# %% [markdown]
# ## Matching
# Automatic matches scored against the demo generator's truth (the learned matcher is trained on an
# independently seeded world, never this one).

# %%
report.goals(summary, "match")

# %%
report.chart(summary, "match")

# %% [markdown]
# ## What the database holds

# %%
report.table(summary["load"], key="table", value="rows")

# %% [markdown]
# ## Forecasts
# Rolling origins every `horizon` days: the first window only chooses each series' model and calibrates the
# intervals; later windows are scored. The chosen model must beat the better naive baseline by 5%, and its
# intervals must cover what they claim.

# %%
report.goals(summary, "forecast")

# %%
report.chart(summary, "forecast")

# %% [markdown]
# ## Elasticity
# Own-price elasticities recovered from the demo sales, against the generator's true values.

# %%
report.goals(summary, "elasticity")

# %%
report.chart(summary, "elasticity")
