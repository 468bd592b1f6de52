# %% [markdown]
# # 5 · Model
# > Backtest price forecasts against naive baselines, and estimate our own-price elasticities.

# %% tags=["parameters"]
upstream = ["load"]
product = None
horizon = 14
prophet_series = 12

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab, the
# same values are read from pipeline.yaml + env.yaml, so every cell below runs as in the pipeline.
from priceintel.pipeline.lab import task_inputs

task_inputs("model", globals())

# %%
from priceintel.pipeline import stages as pipeline

print("modelling the database as of load run", pipeline.read_json(upstream["load"]["receipt"])["run_id"])
result = pipeline.model_stage(horizon=int(horizon), prophet_series=int(prophet_series))
pipeline.save_frame(result["forecasts"], product["forecasts"])
pipeline.save_frame(result["metrics"], product["forecast_metrics"])
pipeline.save_frame(result["elasticity"], product["elasticity"])

# %% [markdown]
# ## Forecast accuracy on held-out days
# Rolling origins every `horizon` days: the first window only chooses each series' model and calibrates the
# intervals; later windows are scored. Baselines are shown beside every model and beside `chosen`. The
# `prophet subset` rows: the same tournament, on the same windows, with Prophet on the first `prophet_series` series.

# %%
result["overall"]

# %% [markdown]
# ## Next `horizon` days: the chosen model with calibrated 80/95% bands and P(price change)
# Stored in Postgres (`forecast_run`, `forecast_value`, `forecast_metric`, `forecast_series`).

# %%
print("forecast run", result["forecast_run_id"])
result["future"].head(10)

# %%
pipeline.plot_forecast_example(result)

# %% [markdown]
# ## Own-price elasticity (log-log, with competitor price and day-of-week controls)

# %%
result["elasticity"].head(15)
