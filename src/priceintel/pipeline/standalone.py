"""A pipeline task notebook run alone (papermill, a scheduler, JupyterLab): the inputs Ploomber would inject.

Each task notebook's first cell after its parameters calls `task_inputs("<task>", globals())`. Under
`priceintel run` Ploomber has injected `upstream` and `product` and nothing changes. Run alone, it sets them as
Ploomber would: the task's declared products and its upstream tasks' products at the paths `pipeline.yaml`
declares under the env's `data_dir` (env.yaml, `$PRICEINTEL_DATA_DIR` / `$PRICEINTEL_REPORTS_DIR`, or the env
file given as the papermill parameter `env_file`), and the task's settings from the env
(`priceintel.pipeline.lab.task_inputs`). Two differences make a notebook runnable alone:

* the values papermill was given (`papermill ... -p horizon 7`: its `# Parameters` cell, read back from the
  kernel's input history `In`) win over the env's, as they do over the parameters cell;
* the model and evaluate tasks (forecast, elasticity, evaluate) read their history from the database: an
  upstream product they need that is not on disk is written from the database into a temporary folder
  (the latest successful load's receipt, the latest pipeline forecast run's backtest metrics, the latest
  elasticity run's estimates); any other missing product is a `StandaloneError` naming the file and the task
  that makes it.

The documented command (papermill reads .ipynb; jupytext converts the percent .py on the way):

    jupytext --to ipynb --set-kernel python3 -o - notebooks/05-forecast.py \\
      | papermill - reports/05-forecast-alone.ipynb -p horizon 7
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from priceintel import PriceIntelError, config

#: tasks whose missing upstream products may come from the database
DATABASE_TASKS = ("forecast", "elasticity", "evaluate")
#: the comment papermill writes at the top of the cell it injects after the parameters cell
PAPERMILL_MARK = "# Parameters"
#: the papermill parameter (not declared in any notebook) naming the env file of a notebook run alone
ENV_FILE_PARAMETER = "env_file"


class StandaloneError(PriceIntelError):
    """A notebook run alone lacks an input that neither the disk nor the database can give."""


def papermill_parameters(namespace: dict) -> dict[str, Any]:
    """The values papermill injected into this kernel: the names assigned in every executed cell that starts with
    papermill's `# Parameters` comment (IPython keeps each executed cell's source in `In`), with their current
    values in `namespace`; {} when papermill injected nothing (JupyterLab, a notebook run by nbclient)."""
    given: dict[str, Any] = {}
    for source in namespace.get("In") or []:
        if not isinstance(source, str) or not source.lstrip().startswith(PAPERMILL_MARK):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id in namespace:
                    given[target.id] = namespace[target.id]
    return given


def task_inputs(task: str, namespace: dict, env_file: str | None = None) -> dict | None:
    """Give a task notebook run alone what Ploomber injects (see the module docstring); None under Ploomber.

    `env_file`: the pipeline env (default env.yaml, or the papermill parameter `env_file`). Returns the dict of
    what was set in `namespace` (the notebook's globals())."""
    from priceintel.pipeline import lab

    if namespace.get("product") is not None:
        return None
    given = papermill_parameters(namespace)
    env_file = env_file or given.pop(ENV_FILE_PARAMETER, None)
    values = lab.task_inputs(task, namespace, env_file) or {}
    values.update(given)
    namespace.update(given)
    if task in DATABASE_TASKS and "upstream" not in given and values.get("upstream"):
        values["upstream"] = namespace["upstream"] = fill_from_database(values["upstream"])
    return values


# --- upstream products from the database ------------------------------------------------------------------


def _latest_receipt(engine) -> dict:
    """The load task's receipt as the latest successful load left it: run_id, loaded, table_counts."""
    from priceintel.db import queries

    row = pd.read_sql(
        "SELECT run_id, counts FROM pipeline_run WHERE task = 'load' AND status = 'success' "
        "ORDER BY run_id DESC LIMIT 1",
        engine,
    )
    if row.empty:
        raise StandaloneError("no successful load in the database yet: run the pipeline once (priceintel run)")
    counts = row["counts"].iloc[0]
    loaded = json.loads(counts) if isinstance(counts, str) else (counts or {})
    return {"run_id": int(row["run_id"].iloc[0]), "loaded": loaded, "table_counts": queries.table_counts(engine)}


def _latest_forecast_metrics(engine) -> pd.DataFrame:
    """The backtest metrics of the latest pipeline forecast run at its horizon, as the forecast task writes them
    (scope 'all series'; the Prophet subset is not stored); empty when there is no run yet."""
    from priceintel.forecast import store

    run_id = store.latest_run_id(engine, name="pipeline")
    if run_id is None:
        return pd.DataFrame(columns=["scope", "unique_id", "model", "n", "mae"])
    h = int(store.read_run(engine, run_id)["horizon"])
    metrics = store.read_metrics(engine, run_id)
    metrics = metrics[metrics["horizon"] == h].drop(columns="horizon")
    return metrics.assign(scope="all series")


def _latest_elasticity(engine) -> pd.DataFrame:
    """The estimates of the latest elasticity run, with the elasticity task's column names."""
    from priceintel.pricing.store import ESTIMATE_COLUMNS

    sql = f"""SELECT {", ".join(ESTIMATE_COLUMNS)} FROM elasticity_estimate
              WHERE run_id = (SELECT max(run_id) FROM elasticity_run) ORDER BY sku"""
    df = pd.read_sql(sql, engine)
    df["identified"] = df["identified"].fillna(False).astype(bool)
    return df.rename(columns={"cross_elasticity": "cross[comp_min]"})


#: (upstream task, product key) -> (file name, writer reading the database)
_FROM_DATABASE = {
    ("load", "receipt"): ("load_receipt.json", _latest_receipt),
    ("forecast", "forecast_metrics"): ("forecast_metrics.csv", _latest_forecast_metrics),
    ("elasticity", "elasticity"): ("elasticity.csv", _latest_elasticity),
}
#: upstream products the database tasks read (the others they are given, e.g. the world folder, are left alone)
_READ = {
    ("scrape", "offers"),
    ("scrape", "errors"),
    ("clean", "errors"),
    ("clean", "observations"),
    ("match", "metrics"),
    ("load", "receipt"),
    ("forecast", "forecast_metrics"),
    ("elasticity", "elasticity"),
}


def fill_from_database(upstream: dict, engine=None, folder: str | Path | None = None) -> dict:
    """`upstream` with every product it names that is missing on disk and stored in the database written from the
    database into `folder` (a new temporary folder by default); a missing product the database does not hold
    (scrape, clean, match) is a StandaloneError naming the file and the task that makes it."""
    missing = [
        (task, key)
        for task, products in upstream.items()
        if isinstance(products, dict)
        for key, path in products.items()
        if (task, key) in _READ and not Path(str(path)).exists()
    ]
    if not missing:
        return upstream
    unknown = [(t, k) for t, k in missing if (t, k) not in _FROM_DATABASE]
    if unknown:
        t, k = unknown[0]
        raise StandaloneError(
            f"upstream product {t}.{k} not found at {upstream[t][k]}: run the {t} task first (priceintel run, "
            f"or priceintel task {t}); only the load receipt, forecast metrics and elasticities come from the database"
        )
    from priceintel.db import engine as db_engine
    from priceintel.pipeline.stages import save_frame, save_json

    engine = engine or db_engine.get_engine()
    where = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="priceintel-alone-"))
    out = {t: dict(p) if isinstance(p, dict) else p for t, p in upstream.items()}
    for task, key in missing:
        name, read = _FROM_DATABASE[(task, key)]
        value = read(engine)
        path = where / name
        if isinstance(value, dict):
            save_json(value, path)
        else:
            save_frame(value, path)
        out[task][key] = str(path)
        print(f"{task}.{key}: not on disk, read from the database into {path}")
    return out


# --- example inputs of notebooks/00-your-data.py ----------------------------------------------------------

#: hosts of the saved real pages the walkthrough's example watch list covers -> (shop name, its currency)
EXAMPLE_SHOPS = {
    "www.amazon.com": ("amazon-us", "USD"),
    "www.amazon.co.uk": ("amazon-uk", "GBP"),
    "www.amazon.de": ("amazon-de", "EUR"),
    "www.amazon.fr": ("amazon-fr", "EUR"),
    "www.otto.de": ("otto", "EUR"),
    "www.johnlewis.com": ("john-lewis", "GBP"),
    "www.argos.co.uk": ("argos", "GBP"),
    "www.zalando.ie": ("zalando", "EUR"),
    "www.boscovs.com": ("boscovs", "USD"),
}


@dataclass
class ExampleInputs:
    """Example files for the walkthrough (catalogue, sales, watch list, shops.yaml) and the local web serving
    the watched pages; `stop()` stops that web."""

    folder: Path
    catalogue: Path
    sales: Path
    watch_list: Path
    shops: Path
    web: str  #: what serves the watched pages
    preview: str  #: one watched page's URL
    stop: Callable[[], None] = field(repr=False, default=lambda: None)


def example_inputs(
    folder: str | Path | None = None,
    n_pages: int = 12,
    sales_days: int = 21,
    pages_dir: str | Path | None = None,
    today: date | None = None,
) -> ExampleInputs:
    """Write a small catalogue, daily sales, a watch list and shops.yaml into `folder` (a new temporary folder by
    default) and serve the watched pages on 127.0.0.1 (nothing is downloaded): the real saved product pages of
    `pages_dir` (default `../shared/data/pages`) on the replay web when that folder exists, else a small demo
    world's three storefronts. One product per watched page (`n_pages`; 0 = every page of `EXAMPLE_SHOPS`),
    `sales_days` days of sales up to yesterday, and one deliberately bad row in each file (what a rejection
    looks like)."""
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="priceintel-your-data-"))
    folder.mkdir(parents=True, exist_ok=True)
    today = today or date.today()
    pages = Path(pages_dir) if pages_dir is not None else config.shared_data_dir() / "pages"
    if (pages / "truth.csv").is_file():
        return _replay_examples(folder, pages, int(n_pages), int(sales_days), today)
    return _demo_examples(folder, int(n_pages) or 8, int(sales_days), today)


def _page_title(body: bytes, fallback: str) -> str:
    """A page's <title> (unescaped, one line, at most 80 characters), else `fallback`."""
    import html
    import re

    found = re.search(rb"<title[^>]*>(.*?)</title>", body, flags=re.S | re.I)
    text = html.unescape(found.group(1).decode("utf-8", "ignore")) if found else ""
    text = " ".join(text.split())[:80]
    return text or fallback


def _write_examples(
    folder: Path, catalogue: pd.DataFrame, watch: pd.DataFrame, shops: dict, sales_days: int, today: date
) -> tuple[Path, Path, Path, Path]:
    """catalogue.csv, sales.csv (`sales_days` days up to yesterday), watch.csv and shops.yaml, each file with one
    bad row: a product without a title, a sale of an unknown sku, a watch whose URL is not a URL."""
    import numpy as np
    import yaml

    rng = np.random.default_rng(7)
    days = pd.date_range(end=pd.Timestamp(today) - pd.Timedelta(days=1), periods=sales_days, freq="D")
    sales = pd.DataFrame(
        [
            {"sku": r.sku, "date": d.date().isoformat(), "units": int(rng.poisson(12)), "price": r.price}
            for r in catalogue.itertuples(index=False)
            for d in days
        ]
    )
    bad_product = {c: None for c in catalogue.columns} | {"sku": "OUR-BAD", "brand": "no title"}
    if "currency" in catalogue and len(catalogue):  # an empty currency cell is not what this row shows
        bad_product["currency"] = catalogue["currency"].iloc[0]
    bad_sale = {"sku": "NOT-OURS", "date": days[-1].date().isoformat(), "units": 1, "price": 1.0}
    bad_watch = {"retailer": "typo", "url": "htp:/not-a-url", "sku": None}
    paths = folder / "catalogue.csv", folder / "sales.csv", folder / "watch.csv", folder / "shops.yaml"
    for frame, bad, path in (
        (catalogue, bad_product, paths[0]),
        (sales, bad_sale, paths[1]),
        (watch, bad_watch, paths[2]),
    ):
        pd.DataFrame([*frame.to_dict("records"), bad], columns=list(frame.columns)).to_csv(path, index=False)
    paths[3].write_text(yaml.safe_dump({"shops": shops}, sort_keys=False))
    return paths


def _replay_examples(folder: Path, pages_dir: Path, n_pages: int, sales_days: int, today: date) -> ExampleInputs:
    """Examples on the replay web: one product per saved page of `EXAMPLE_SHOPS` (its title, brand and GTIN from
    the page and its truth, our price 4% above the page's), each page watched under its shop."""
    from urllib.parse import urlsplit

    from priceintel.demo.replay import ReplayWeb
    from priceintel.scrape.adapters import adapter_for_url

    web = ReplayWeb(pages_dir)
    base, index = web.start()
    try:
        chosen = [p for p in index.values() if (urlsplit(p.url).hostname or "") in EXAMPLE_SHOPS]
        chosen.sort(key=lambda p: list(EXAMPLE_SHOPS).index(urlsplit(p.url).hostname or ""))
        chosen = chosen[:n_pages] if n_pages else chosen
        products: list[dict] = []
        watches: list[dict] = []
        shops: dict[str, dict] = {}
        for i, page in enumerate(chosen, 1):
            host = urlsplit(page.url).hostname or ""
            shop, currency = EXAMPLE_SHOPS[host]
            shops.setdefault(
                shop,
                {
                    "base_url": f"{base}/{host.removeprefix('www.')}/",
                    "adapter": adapter_for_url(page.url).name,
                    "requests_per_second": 20,
                    "concurrency": 2,
                    "currency": currency,
                },
            )
            truth = page.truth
            price = float(truth["price"]) if truth.get("price") else 10.0
            sku = f"OUR-{i:03d}"
            products.append(
                {
                    "sku": sku,
                    "title": _page_title(web.body(page), f"Product {i}"),
                    "brand": (truth.get("brand_all") or "").split("|")[0] or None,
                    "gtin": (truth.get("gtin_all") or "").split("|")[0] or None,
                    "price": round(price * 1.04, 2),
                    "currency": currency,
                    "unit_cost": round(price * 0.6, 2),
                }
            )
            watches.append({"retailer": shop, "url": page.local_url, "sku": sku})
        paths = _write_examples(folder, pd.DataFrame(products), pd.DataFrame(watches), shops, sales_days, today)
    except BaseException:
        web.stop()
        raise
    where = f"the replay web at {base}: {len(chosen)} real saved product pages of {pages_dir}"
    return ExampleInputs(folder, *paths, web=where, preview=chosen[0].local_url if chosen else base, stop=web.stop)


def _demo_examples(folder: Path, n_products: int, sales_days: int, today: date) -> ExampleInputs:
    """Examples on a small demo world's storefronts: its catalogue and sales, and every listing of its truth
    that is one of our products watched under its shop."""
    from priceintel.demo import RETAILERS, Storefronts, generate_world

    start = today - timedelta(days=max(2, sales_days))
    world = generate_world(n_products=n_products, n_days=max(2, sales_days), seed=7, start=start)
    fronts = Storefronts(world)
    urls = fronts.start()
    try:
        shops = {
            r: {"base_url": urls[r] + "/", "adapter": r, "requests_per_second": 20, "currency": "USD"}
            for r in RETAILERS
        }
        products = world.products.rename(columns={"name": "title", "base_price": "price"}).assign(currency="USD")
        truth = world.truth_matches.dropna(subset=["sku"]).merge(world.listings, on=["retailer", "item_id"])
        watch = pd.DataFrame(
            {"retailer": truth["retailer"], "url": truth["retailer"].map(urls) + truth["url"], "sku": truth["sku"]}
        )
        paths = _write_examples(folder, products, watch, shops, sales_days, today)
    except BaseException:
        fronts.stop()
        raise
    where = f"three demo storefronts on 127.0.0.1 ({n_products} demo products)"
    preview = str(watch["url"].iloc[0]) if len(watch) else urls[RETAILERS[0]]
    return ExampleInputs(folder, *paths, web=where, preview=preview, stop=fronts.stop)
