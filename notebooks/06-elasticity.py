# %% [markdown]
# # 6 · Elasticity
# > Our own-price elasticities from our sales, with recommended prices for the elasticity app.
#
# Log-log demand per product with the cheapest competitor's price (its coefficient is the cross-price
# elasticity), day-of-week effects and empirical-Bayes pooling within the category. Observational prices are
# confounded by promotions and chain-wide events: `make oj-report` shows specifications side by side.

# %% tags=["parameters"]
upstream = ["load"]
product = None

# %%
# `priceintel run` injects this task's inputs, outputs and settings (Ploomber); opened in JupyterLab or run
# alone with papermill, the same values are read from pipeline.yaml + env.yaml (papermill's -p values win),
# so every cell below runs as in the pipeline (docs/notebooks.md).
from priceintel.pipeline.standalone import task_inputs

task_inputs("elasticity", globals())

# %%
from priceintel.pipeline import report
from priceintel.pipeline import stages as pipeline

print("estimating on the database as of load run", pipeline.read_json(upstream["load"]["receipt"])["run_id"])
result = pipeline.elasticity_stage()
pipeline.save_frame(result["elasticity"], product["elasticity"])
if result.get("skipped"):  # e.g. no sales imported yet
    print(result["skipped"])
el = result["elasticity"]
report.table({"products": len(el), "identified": int(el["identified"].sum()),
              "median own-price elasticity": round(float(el["elasticity"].median()), 3),
              "stored run": result["elasticity_run_id"]})

# %% [markdown]
# ## Estimates (first products): elasticity with its 95% interval, pooled toward the category mean

# %%
cols = [c for c in ("sku", "elasticity", "ci_lo", "ci_hi", "elasticity_pooled", "cross[comp_min]", "note") if c in el]
report.frame(el[cols].head(15))
