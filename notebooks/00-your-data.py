# %% [markdown]
# # Your data: from files to the first live run and the apps
# > A walkthrough for a retailer's data scientist: import our catalogue, sales and competitor watch list, preview
# > one competitor page, run the pipeline once on the live source, and read the latest prices, the watch health
# > and where the apps are.
#
# This notebook is **not** a pipeline task (`pipeline.yaml` does not list it): it calls the same library functions
# as the `priceintel` commands, one step per cell, and shows what each returns.
#
# | step | command line equivalent |
# |---|---|
# | import our catalogue | `priceintel catalog import catalogue.csv` |
# | import our daily sales | `priceintel sales import sales.csv` |
# | import the watch list | `priceintel watch import watch.csv` |
# | preview one competitor page | `priceintel preview URL` |
# | run the pipeline on the live source | `priceintel run --set source=live` |
# | the latest price of every watched page | `priceintel prices latest` |
# | the apps | `priceintel users add NAME`, then `priceintel apps` |
#
# **Which database.** Everything goes into the database `DATABASE_URL` names (`make lab` / `priceintel lab` set it
# to the workbench database: the embedded one in `data/pg/` unless you set yours).
#
# **Which files.** Give your own files in the parameters cell below. With none given, the notebook writes small
# example files into a temporary folder and serves the pages they watch on 127.0.0.1, so it runs without the
# internet: the real saved product pages of `../shared/data/pages` (the replay web) when that folder exists, else
# a small demo world's storefronts. Each example file has one deliberately bad row, so you see what a rejection
# looks like. The examples end up in the database like your own data would: try them on a scratch database.
#
# Run it alone with papermill (docs/notebooks.md), e.g. with your files:
# `jupytext --to ipynb --set-kernel python3 -o - notebooks/00-your-data.py | papermill - out.ipynb -p catalogue my.csv`

# %% tags=["parameters"]
catalogue = None  # our catalogue: CSV, TSV, Excel, Parquet or a Merchant Center feed (id and title are required)
sales = None  # our daily sales: sku, date, units (price, promo optional); None with your catalogue: skipped
watch_list = None  # the competitor pages to watch: url, retailer (optional), sku (optional: our product)
shops = None  # shops.yaml describing those shops (None: $PRICEINTEL_SHOPS, else config/shops.yaml)
preview = None  # one product page to preview (None: the first watched page)
env_file = None  # the pipeline's settings (None: env.yaml)
example_pages = 12  # with no files given: how many watched pages the examples cover (0: all of them)
example_folder = None  # with no files given: where the example files go (None: a new temporary folder)
run_live = True  # run the pipeline once on the live source

# %%
import os

import pandas as pd
from IPython.display import display

from priceintel.db import engine as db_engine
from priceintel.db import migrate

pd.set_option("display.max_colwidth", None)  # URLs in full
migrate.upgrade()  # the schema, migrated to the latest revision (what every `priceintel` command does first)
engine = db_engine.get_engine()
print("database:", db_engine.redact_url(db_engine.get_url()))

# %% [markdown]
# ## 1 · The files
# Your files when given; otherwise the example files and the local web serving the pages they watch.

# %%
from priceintel.pipeline.standalone import example_inputs

examples = None
if catalogue is None:
    examples = example_inputs(example_folder, n_pages=example_pages)
    catalogue, sales, watch_list, shops = examples.catalogue, examples.sales, examples.watch_list, examples.shops
    preview = preview or examples.preview
    print(f"example files in {examples.folder}; the watched pages are served by {examples.web}")
if shops is not None:  # the shops of this run (the pipeline's task kernels inherit the variable)
    os.environ["PRICEINTEL_SHOPS"] = str(shops)
pd.DataFrame({"file": ["catalogue", "sales", "watch list", "shops"],
              "path": [str(p) if p is not None else "-" for p in (catalogue, sales, watch_list, shops)]})

# %% [markdown]
# ## 2 · Import our catalogue
# Only an id (`id` or `sku`) and a title (`title` or `name`) are required; brand, GTIN, MPN, category, our price,
# cost, MAP and MSRP are used when present. Each row is checked: a rejected row is listed with its reason (and
# written beside the file as `<name>.rejects.csv`), the valid rows are upserted in one transaction and the import
# is recorded in `import_run`. Importing the same file again changes nothing (`unchanged`).

# %%
from priceintel.ingest import import_catalog


def show(result):
    """An import's one-line summary, its counts, and its warnings and rejected rows as a table."""
    print(result.summary())
    issues = [{"level": i.level, "row": i.row, "column": i.column, "value": i.value, "reason": i.reason}
              for i in [*result.warnings, *result.rejects]]
    display(pd.DataFrame([result.counts]))
    return pd.DataFrame(issues, columns=["level", "row", "column", "value", "reason"])


catalogue_result = import_catalog(engine, catalogue)
show(catalogue_result)

# %% [markdown]
# ## 3 · Import our daily sales
# One row per product and day: sku, date, units (price and promo when you have them). A sale of a product that is
# not in the catalogue is rejected. Elasticities and recommended prices need 28 days of sales; the examples have
# 21, so the elasticity task says it waits for more.

# %%
from priceintel.ingest import import_sales

sales_result = import_sales(engine, sales) if sales is not None else None
show(sales_result) if sales_result is not None else "no sales file given"

# %% [markdown]
# ## 4 · Import the watch list
# The competitor pages we fetch every run: url, retailer (the shop's name in shops.yaml; else derived from the
# host) and sku (our product the page is compared with: a watch with a sku is a confirmed match). A malformed URL
# or an unknown sku is rejected; a retailer missing from shops.yaml is a warning (fetched with the generic
# adapter and default politeness).

# %%
from priceintel.ingest import import_watches, list_watches
from priceintel.scrape.shops import default_shops_path, load_shops

known = set(load_shops()) if default_shops_path().is_file() else None
watch_result = import_watches(engine, watch_list, known_retailers=known) if watch_list is not None else None
show(watch_result) if watch_result is not None else "no watch list given (priceintel watch add URL adds one page)"

# %%
list_watches(engine)[["watch_id", "retailer", "url", "sku", "status"]]

# %% [markdown]
# ## 5 · Preview one competitor page
# Exactly what a watch fetch would store (the shop of shops.yaml, its adapter and politeness; robots.txt honoured;
# the page archived under `data/raw/`), and how each field was found. `priceintel preview URL` prints the same.

# %%
from priceintel.apps.onboarding import preview_url

watched = list_watches(engine)["url"]
preview = preview or (watched.iloc[0] if len(watched) else None)
seen = preview_url(preview) if preview else {"ok": False, "message": "nothing to preview: no URL, no watch"}
if seen["ok"]:
    print(f"{seen['url']}: outcome {seen['record']['outcome']} (shop {seen['shop']}) - {seen['record']['message']}")
    display(seen["fields"])
else:
    print(seen["message"])

# %% [markdown]
# ## 6 · Run the pipeline once on the live source
# What `priceintel run --set source=live` does: the world task writes the catalogue the database holds, the scrape
# task fetches today's page of every watch (shops in parallel, each at its own pace), clean and match treat them
# like any other offers (a watch with a sku is a confirmed match), and the load task stores today's prices, one
# fetch row per watched page and each watch's status. Forecasts start once the price history is long enough for a
# backtest, elasticities once there are 28 days of sales: on a first run both tasks say so and carry on.

# %%
from priceintel import PriceIntelError
from priceintel.pipeline import run

env = run.build_env(env_file, {"source": "live"})
if run_live:
    try:
        build = run.run_pipeline(env)
    except PriceIntelError as exc:
        run.record_outcome(env, "failed", str(exc))
        raise
    run.record_outcome(env, "success", None)
    display(build.to_pandas()[["name", "Ran?", "Elapsed (s)"]])  # the tasks, as `priceintel run` prints them
else:
    print("run_live is False: no run")

# %% [markdown]
# ## 7 · The latest price of every watched page
# `priceintel prices latest` (add `--format csv` or `--format json` for scripts): one row per active watch with
# its listing's latest stored observation and the watch's status.

# %%
from priceintel.db import queries

latest = queries.latest_watched(engine)
print(f"{int(latest['price'].notna().sum())} of {len(latest)} watched pages have a stored price")
latest

# %% [markdown]
# ## 8 · Watch health
# Each watch's status from its recent fetches (`new` until its first good fetch, then `ok`, or `failing`, `blocked`,
# `moved`, `gone` after some days in a row of errors, robot checks, redirects or 404s) and its last fetch. The
# onboarding app shows the same table, with filters.

# %%
from priceintel.apps.onboarding import status_counts, watch_health

health = watch_health(engine)
display(pd.DataFrame([status_counts(health)]))
health[["retailer", "sku", "status", "status_reason", "last_outcome", "last_price", "last_currency", "url"]]

# %% [markdown]
# ## 9 · Where the apps are
# `priceintel users add NAME` once (the apps are behind a sign-in), then `priceintel apps` (or `make apps`) serves
# them on http://127.0.0.1:8866/: the landing page lists them. The **onboarding** app does steps 2 to 5 and 8 of
# this notebook in a browser (upload a file, preview a page, add it to the watch list, watch health); the
# **match review** app confirms or rejects the matches the matcher was unsure about. In JupyterLab (`make lab`)
# open `apps/<app>.ipynb` and press *Render with Voilà* to preview one.

# %%
from priceintel.apps.landing import APPS

pd.DataFrame([{"app": title, "url": f"http://127.0.0.1:8866/voila/render/{nb}", "for": who or "everyone",
               "what": what} for title, nb, who, what in APPS])

# %% [markdown]
# ## Next
# * Schedule the live run daily: `priceintel schedule --cron "0 6 * * *" --set source=live` (docs/operations.md).
# * Run one stage notebook alone with papermill, e.g. the forecast with another horizon (docs/notebooks.md).

# %%
if examples is not None:
    examples.stop()  # the example web; the files stay in examples.folder
