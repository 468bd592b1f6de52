# %% [markdown]
# # 5 · Forecast
# > Backtest price forecasts of every competitor listing against naive baselines, and forecast the next days.

# %% tags=["parameters"]
upstream = ["load"]
product = None
horizon = 14
prophet_series = 12

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("forecast", globals())

# %%
from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline

print("forecasting the database as of load run", pipeline.read_json(upstream["load"]["receipt"])["run_id"])
result = pipeline.forecast_stage(horizon=int(horizon), prophet_series=int(prophet_series))
pipeline.save_frame(result["forecasts"], product["forecasts"])
pipeline.save_frame(result["metrics"], product["forecast_metrics"])
if result.get("skipped"):  # e.g. the first days of the live source
    print(result["skipped"])

# %% [markdown]
# ## Forecast accuracy on held-out days
# Rolling origins every `horizon` days: the first window only chooses each series' model and calibrates the
# intervals; later windows are scored. Baselines are shown beside every model and beside `chosen`. The
# `prophet subset` rows: the same tournament, on the same windows, with Prophet on the first `prophet_series` series.

# %%
show = ["scope", "model", "n", "mae", "mase", "coverage_80", "coverage_95", "winkler_95"]
report.frame(result["overall"][[c for c in show if c in result["overall"]]])

# %% [markdown]
# ## Next `horizon` days: the chosen model with calibrated 80/95% bands and P(price change)
# Stored in Postgres (`forecast_run`, `forecast_value`, `forecast_metric`, `forecast_series`).

# %%
print("forecast run", result["forecast_run_id"])
report.frame(result["future"].head(10))

# %%
report.plot_forecast_example(result)
