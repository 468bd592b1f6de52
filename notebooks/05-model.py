# %% [markdown]
# # 5 · Model
# > Backtest price forecasts against naive baselines, and estimate our own-price elasticities.

# %% tags=["parameters"]
upstream = ["load"]
product = None
horizon = 14
prophet_series = 12

# %%
from priceintel import pipeline

print("modelling the database as of load run", pipeline.read_json(upstream["load"]["receipt"])["run_id"])
result = pipeline.model_stage(horizon=int(horizon), prophet_series=int(prophet_series))
pipeline.save_frame(result["forecasts"], product["forecasts"])
pipeline.save_frame(result["metrics"], product["forecast_metrics"])
pipeline.save_frame(result["elasticity"], product["elasticity"])

# %% [markdown]
# ## Forecast accuracy on held-out days
# The last `horizon` days of every series are held out. Baselines are shown beside every model.

# %%
result["overall"]

# %%
pipeline.plot_forecast_example(result)

# %% [markdown]
# ## Own-price elasticity (log-log, with competitor price and day-of-week controls)

# %%
result["elasticity"].head(15)
