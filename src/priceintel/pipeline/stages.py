"""Stage functions behind the pipeline notebooks: each notebook is a parameters cell plus calls here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from priceintel import PriceIntelError, config
from priceintel.items import jsonable, plain
from priceintel.obs import start_task_kernel

# every task notebook imports this module: in a task's kernel (`run.instrument` exported its name), its logs
# carry the run and task ids and go to the daily file like its parent's
start_task_kernel()
#: demo: the deterministic demo world and its loopback shops; live: our catalogue and watch list in the
#: database, today's pages from the real shops (`pipeline.live`)
KNOWN_SOURCES = ("demo", "live")


class ParameterError(PriceIntelError):
    """A pipeline parameter is invalid; the message names the parameter and the value."""


@dataclass(frozen=True)
class RunParams:
    """Validated parameters of one pipeline run."""

    data_dir: Path
    seed: int
    n_products: int
    days: int
    world_start: date
    retailers: tuple[str, ...]
    unknown_retailers: tuple[str, ...]
    product_limit: int
    source: str

    @property
    def world_dir(self) -> Path:
        """Where this run's world lives: data/demo/world (demo source) or data/live/world (live source)."""
        return self.data_dir / self.source / "world"

    @property
    def run_days(self) -> list[date]:
        """Every simulated day the run scrapes."""
        return [self.world_start + timedelta(days=i) for i in range(self.days)]


def _as_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ParameterError(f"parameter {name}={value!r} is not an integer") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ParameterError(f"parameter {name}={number} must be {bound}")
    return number


def parse_retailers(value: str | list | tuple) -> tuple[list[str], list[str]]:
    """Split a comma-separated retailer list into (known, unknown) adapter keys."""
    from priceintel.scrape.adapters import all_adapters

    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(v).strip().lower() for v in items if str(v).strip()]
    known_names = set(all_adapters()) - {"generic"}
    known = [n for n in names if n in known_names]
    unknown = [n for n in names if n not in known_names]
    return known, unknown


def validate_params(
    *,
    data_dir: str | Path,
    seed: Any = 42,
    n_products: Any = 50,
    days: Any,
    world_start: Any,
    retailers: Any,
    product_limit: Any = 0,
    source: str = "demo",
) -> RunParams:
    """Check every run parameter; raise ParameterError naming the first bad one."""
    try:
        start = date.fromisoformat(str(world_start))
    except ValueError:
        raise ParameterError(f"parameter world_start={world_start!r} is not a date (YYYY-MM-DD)") from None
    if source not in KNOWN_SOURCES:
        raise ParameterError(f"parameter source={source!r} is unknown; expected one of {KNOWN_SOURCES}")
    known, unknown = parse_retailers(retailers)
    if not known:
        raise ParameterError(
            f"parameter retailers={retailers!r} names no known retailer (unknown: {', '.join(unknown) or 'none given'})"
        )
    return RunParams(
        data_dir=Path(data_dir).resolve(),
        seed=_as_int("seed", seed, 0),
        n_products=_as_int("n_products", n_products, 1, 5000),
        days=_as_int("days", days, 2, 3660),
        world_start=start,
        retailers=tuple(known),
        unknown_retailers=tuple(unknown),
        product_limit=_as_int("product_limit", product_limit, 0),
        source=source,
    )


# --- small I/O helpers ------------------------------------------------------------------


def save_frame(df: pd.DataFrame, path: Any) -> Path:
    """Write a frame to parquet or csv (by extension), creating the folder."""
    path = Path(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


def save_json(obj: Any, path: Any) -> Path:
    """Write an object as pretty JSON (NaN becomes null), creating the folder."""
    path = Path(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n")
    return path


def read_json(path: Any) -> Any:
    """Read a JSON product."""
    return json.loads(Path(str(path)).read_text())


# --- stages -------------------------------------------------------------------------------


def world_stage(params: RunParams, engine=None) -> Path:
    """The world the run watches: our catalogue and sales and the shops' pages (source "demo": the deterministic
    demo world, generated once per parameters; "live": the catalogue the database holds); returns its folder
    (the `world` task's product)."""
    from priceintel.demo import world as demo

    if params.source == "live":
        from priceintel.db import engine as db_engine
        from priceintel.db import migrate
        from priceintel.pipeline import live

        engine = engine or db_engine.get_engine()
        migrate.upgrade()
        return live.write_world(engine, params.world_dir)

    demo.ensure_world(
        params.world_dir, n_products=params.n_products, n_days=params.days, seed=params.seed, start=params.world_start
    )
    return params.world_dir


def scrape_stage(
    params: RunParams, world_dir: str | Path | None = None, progress: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(offers, errors, fetches) in a deterministic order. Demo source: serve the world's storefronts (reusing
    running ones), then fetch and extract every page of every day (no watch fetches). Live source: today's page
    of every watch and matched listing (`pipeline.live.live_scrape`). Given a run key (`priceintel task scrape
    --run-key KEY`, the Airflow DAG), the merge of that run's per-shop shards instead (`pipeline.shards`)."""
    from priceintel.pipeline import shards

    merging = shards.requested()
    if merging is not None:
        return shards.merge(params, merging[0], merging[1], world_dir)
    return shards.scrape_shops(params, world_dir, progress=progress)


def scrape_summary(offers: pd.DataFrame, errors: pd.DataFrame) -> pd.DataFrame:
    """Pages, distinct products, prices and errors per retailer."""
    by = offers.groupby("retailer")
    out = pd.DataFrame(
        {
            "pages": by.size(),
            "products": by["item_id"].nunique(),
            "prices": by["price"].apply(lambda s: int(s.notna().sum())),
        }
    )
    err = errors.groupby("retailer").size() if len(errors) else pd.Series(dtype=int)
    out["errors"] = err.reindex(out.index).fillna(0).astype(int)
    return out


def read_catalogue(path: str | Path) -> pd.DataFrame:
    """Our product catalogue: the `catalogue` product of the world task (a products.csv)."""
    path = Path(path)
    if not path.exists():
        raise PriceIntelError(f"catalogue not found at {path}: run the world task (`priceintel run`) first")
    return pd.read_csv(path, dtype={"gtin": str, "sku": str, "mpn": str})


def _truth_matches(world_dir: str | Path) -> pd.DataFrame | None:
    path = Path(world_dir) / "truth" / "matches.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, dtype={"item_id": str, "sku": str})


def match_metrics(matches: pd.DataFrame, listings: pd.DataFrame, world_dir: str | Path) -> dict:
    """Precision/recall/F1 of automatic matches against the demo truth (empty dict when none)."""
    from priceintel.match import rules as match

    truth = _truth_matches(world_dir)
    if truth is None:
        return {}
    # score only the listings that were actually scraped
    truth = truth.merge(listings[["retailer", "item_id"]].drop_duplicates(), how="inner")
    metrics = match.score_matches(matches, truth)
    metrics["review_queue"] = int((matches["status"] == "review").sum())
    metrics["split"] = "all demo listings vs generator truth"
    return metrics


def match_stage(listings: pd.DataFrame, products: pd.DataFrame, source: str = "demo", engine=None) -> tuple:
    """(matches, model, stored labels) of the match task. Stored review labels stand as decisions; the live
    source adds its watch list's skus as confirmed labels and learns from its own identifier pairs
    (`own_data_model`); the demo source learns from an independently seeded demo world (`pipeline_model`)."""
    from priceintel.match import labels as match_labels
    from priceintel.match import model as listing_model
    from priceintel.match import rules as match

    stored = match_labels.stored_labels_or_none()
    if source == "live":
        from priceintel.db import engine as db_engine
        from priceintel.pipeline import live

        known = live.watch_labels(engine or db_engine.get_engine(), listings)
        stored = known if stored is None else pd.concat([stored, known], ignore_index=True)
        model = listing_model.own_data_model(listings, products, stored)
    else:
        model = listing_model.pipeline_model(listings, products, stored)
    return match.match_listings(listings, products, labels=stored, model=model), model, stored


#: where each frame of an in-process run is written (the paths pipeline.yaml declares under data_dir/interim)
_PRODUCTS = {
    "scrape": {"offers": "offers.parquet", "errors": "scrape_errors.csv", "fetches": "fetches.parquet"},
    "clean": {"observations": "observations.parquet", "listings": "listings.parquet", "errors": "clean_errors.csv"},
    "match": {"matches": "matches.parquet", "categories": "listing_categories.parquet"},
}


def save_products(data_dir: str | Path, world_dir: str | Path, frames: dict[str, dict[str, pd.DataFrame]]) -> dict:
    """Write the frames of an in-process run ({task: {product: frame}}, e.g. {"scrape": {"offers": df}}) where
    the pipeline keeps them and return the `upstream` of the load task (world products included)."""
    interim, world_dir = Path(data_dir) / "interim", Path(world_dir)
    upstream: dict = {
        "world": {"world": world_dir, "catalogue": world_dir / "products.csv", "sales": world_dir / "sales.csv"}
    }
    for task, products in frames.items():
        for name, frame in products.items():
            path = interim / _PRODUCTS[task][name]
            save_frame(frame, path)
            upstream.setdefault(task, {})[name] = path
    return upstream


def _read_world_tables(upstream: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The world task's catalogue and sales products (ids and GTINs kept as text)."""
    products = read_catalogue(upstream["world"]["catalogue"])
    sales = pd.read_csv(str(upstream["world"]["sales"]), dtype={"sku": str}, parse_dates=["ds"])
    return products, sales


def _read_fetches(upstream: dict) -> pd.DataFrame:
    """The scrape task's watch fetches (empty for the demo source)."""
    from priceintel.pipeline import live

    path = upstream["scrape"].get("fetches") if isinstance(upstream["scrape"], dict) else None
    if path is None or not Path(str(path)).exists():
        return live.fetch_frame()
    return pd.read_parquet(str(path))


def _with_categories(listings: pd.DataFrame, upstream: dict) -> pd.DataFrame:
    """Listings with the match task's categories of unmatched listings (category, category_confidence; NULL
    for the others, which keeps what dim_listing knows)."""
    path = upstream["match"].get("categories") if isinstance(upstream["match"], dict) else None
    if path is None or not Path(str(path)).exists():
        return listings
    cats = pd.read_parquet(str(path))
    cats = cats[cats["category"].notna()][["retailer", "item_id", "category", "confidence"]]
    cats = cats.rename(columns={"confidence": "category_confidence"}).drop_duplicates(["retailer", "item_id"])
    return listings.drop(columns=["category", "category_confidence"], errors="ignore").merge(
        cats, on=["retailer", "item_id"], how="left"
    )


def load_stage(upstream: dict, data_dir: str | Path, full_reload: Any = False) -> dict:
    """Migrate, then load dimensions and facts (and the watch fetches of a live run) in one transaction;
    return counts. Observations the warehouse holds already are skipped (`db.watermark`; `full_reload`: none)."""
    from priceintel.db import engine as db_engine
    from priceintel.db import load, migrate, queries, watermark
    from priceintel.db import views as db_views
    from priceintel.ingest import provenance
    from priceintel.pipeline import live

    data_dir = Path(data_dir)
    obs = pd.read_parquet(str(upstream["clean"]["observations"]))
    obs = provenance.with_methods(obs, upstream["scrape"].get("offers"))  # how each price was extracted
    listings = _with_categories(pd.read_parquet(str(upstream["clean"]["listings"])), upstream)
    matches = pd.read_parquet(str(upstream["match"]["matches"]))
    scrape_errors = pd.read_csv(str(upstream["scrape"]["errors"]), dtype=str)
    clean_errors = pd.read_csv(str(upstream["clean"]["errors"]), dtype=str)
    products, sales = _read_world_tables(upstream)
    fetches = _read_fetches(upstream)

    engine = db_engine.get_engine()
    db_engine.check_connection(engine)
    migrate.upgrade()
    load.make_partitions_ahead(engine)  # before the load's transaction: making a partition locks fact_price
    retailers = pd.DataFrame({"retailer": sorted(set(obs["retailer"]) | set(listings["retailer"]))})
    retailers["name"] = retailers["retailer"].str.title()
    retailers["base_url"] = None
    loaded: dict[str, Any] = {}
    with engine.begin() as conn:
        run_id = load.start_run(conn, "load", {"data_dir": str(data_dir)})
        fresh = watermark.fresh(conn, obs, full=full_reload)  # newer than the watermark, or late and missing
        if len(obs) or len(sales):
            days = pd.concat([obs["ds"], sales["ds"]]) if len(sales) else obs["ds"]
            loaded["dates"] = load.ensure_dates(conn, days.min(), days.max())
        loaded["retailers"] = load.upsert_retailers(conn, retailers)
        loaded["products"] = load.upsert_products(conn, products)
        loaded["listings"] = load.upsert_listings(conn, load.listing_rows(listings, fresh.rows))  # and history
        loaded["matches"] = load.load_matches(conn, matches)
        errors = pd.concat([scrape_errors, clean_errors], ignore_index=True)
        errors = errors.reindex(columns=["url", "retailer", "kind", "message"])
        fetched = pd.to_datetime(obs["observed_at"], utc=True)
        first, last = (None if pd.isna(t) else t.to_pydatetime() for t in (fetched.min(), fetched.max()))
        scrape_run_id = load.record_scrape_run(  # first: every price it stores names it (lineage)
            conn,
            retailer=",".join(retailers["retailer"]),
            started_at=first,
            finished_at=last,
            pages=len(obs) + len(scrape_errors),
            offers=len(obs),
            errors=len(errors),
            error_summary=errors.groupby("kind").size().to_dict() if len(errors) else {},
            code_version=config.code_version(),
            pipeline_run_id=run_id,
        )
        loaded["prices"] = load.load_prices(conn, fresh.rows, scrape_run_id=scrape_run_id)
        loaded["watermark"] = watermark.advance(conn, fresh, run_id)  # moves only if this transaction commits
        loaded["sales"] = load.load_sales(conn, sales)
        loaded["errors"] = load.record_errors(conn, scrape_run_id, errors)
        loaded["watch"] = live.record_fetches(conn, fetches, scrape_run_id)
        load.finish_run(conn, run_id, "success", {k: v for k, v in loaded.items()}, {})
    db_views.refresh(engine)  # the apps' materialized views (and their cache key) follow every load
    return {"loaded": loaded, "table_counts": queries.table_counts(engine), "run_id": run_id}


def _price_series(engine) -> pd.DataFrame:
    """Daily competitor price series from Postgres as unique_id/ds/y (out-of-stock days are NaN)."""
    sql = """
        select r.retailer || ':' || l.item_id as unique_id, d.date as ds, f.price::float as y
        from fact_price f
        join dim_listing l using (listing_id)
        join dim_retailer r using (retailer_id)
        join dim_date d using (date_key)
        order by 1, 2
    """
    df = pd.read_sql(sql, engine)
    df["ds"] = pd.to_datetime(df["ds"])
    return df


def _sales_panel(engine) -> pd.DataFrame:
    """Our daily sales with the lowest competitor price of the day, for elasticity."""
    sql = """
        select p.sku, d.date as ds, s.units, s.price::float as price, s.promo,
               st.min_price::float as comp_min, p.category
        from fact_sales s
        join dim_product p using (product_id)
        join dim_date d using (date_key)
        left join v_daily_price_stats st on st.product_id = s.product_id and st.date_key = s.date_key
        order by 1, 2
    """
    df = pd.read_sql(sql, engine)
    df["ds"] = pd.to_datetime(df["ds"])
    return df


def forecast_stage(horizon: int = 14, prophet_series: int = 12, engine=None, n_windows: int = 3) -> dict:
    """Backtest every competitor price series in the tournament (baselines beside models, choice and interval
    calibration on earlier windows only), store the run and its forecasts; Prophet on the first `prophet_series`
    series again (slow), on the same windows."""
    from priceintel.db import engine as db_engine
    from priceintel.db import views as db_views
    from priceintel.forecast import store as forecast_store
    from priceintel.forecast import tournament
    from priceintel.forecast.columns import interval_columns
    from priceintel.forecast.models import PROPHET

    engine = engine or db_engine.get_engine()
    series = _price_series(engine)
    h, nw = int(horizon), int(n_windows)
    days = int(series.groupby("unique_id")["ds"].nunique().max()) if len(series) else 0
    need = tournament.default_min_train(tournament.get_freq("D"), 7, h) + h
    if days < need:  # e.g. the first days of a live source: say so, and forecast once the history is there
        return _skipped_forecast(
            f"not enough price history to backtest yet: the longest series has {days} day(s), a backtest needs "
            f"at least {need} (training + horizon {h}); forecasts start once the history is there"
        )
    runs = {"all series": tournament.run_tournament(series, h=h, n_windows=nw, progress=False)}
    res = runs["all series"]
    run_id = forecast_store.save_run(engine, res, name="pipeline")
    ids = sorted(series["unique_id"].unique())[: max(0, int(prophet_series))]
    if ids:
        runs[f"prophet subset ({len(ids)} series)"] = sub = tournament.run_tournament(
            series[series["unique_id"].isin(ids)], h=h, n_windows=nw, models=(PROPHET,), progress=False
        )
    scoped = [r.metrics[r.metrics["horizon"] == h].drop(columns="horizon").assign(scope=k) for k, r in runs.items()]
    metrics = pd.concat(scoped, ignore_index=True)
    cv = res.cv[[c for c in res.cv.columns if not c.endswith("-raw") and not c.startswith("_")]]
    if ids:
        keys = ["unique_id", "ds", "cutoff"]
        cv = cv.merge(sub.cv[keys + interval_columns(PROPHET)], on=keys, how="left")
    db_views.refresh(engine, views=("mv_app_forecasts",))  # prices are as the load left them
    return {
        "forecasts": cv,
        "metrics": metrics,
        "overall": overall_metrics(metrics),
        "series_report": res.report,
        "forecast_run_id": run_id,
        "future": res.forecasts,
    }


def _skipped_forecast(reason: str) -> dict:
    """The forecast stage's result when there is nothing to backtest yet: empty frames and the reason."""
    from priceintel.forecast.columns import METRICS

    metrics = pd.DataFrame(columns=["scope", "unique_id", "model", "n", *METRICS])
    return {
        "forecasts": pd.DataFrame(columns=["unique_id", "ds", "cutoff", "y"]),
        "metrics": metrics,
        "overall": metrics.drop(columns="unique_id"),
        "series_report": None,
        "forecast_run_id": None,
        "future": pd.DataFrame(columns=["unique_id", "ds"]),
        "skipped": reason,
    }


def elasticity_stage(engine=None) -> dict:
    """Own-price elasticity of our products from our sales, with the cheapest competitor's price (its coefficient
    is the cross-price elasticity), day-of-week effects and empirical-Bayes pooling within the category; stores
    the estimates and recommended prices for the elasticity app."""
    from priceintel.db import engine as db_engine
    from priceintel.db import views as db_views
    from priceintel.pricing import elasticity
    from priceintel.pricing import store as pricing_store

    engine = engine or db_engine.get_engine()
    sales = _sales_panel(engine)
    if sales["ds"].nunique() < 28 or sales["price"].notna().sum() == 0:
        return {
            "elasticity": pd.DataFrame(columns=["sku", "elasticity", "ci_lo", "ci_hi", "identified", "note"]),
            "elasticity_run_id": None,
            "skipped": f"not enough sales to estimate elasticities: {sales['ds'].nunique()} day(s) with sales, "
            "28 needed (priceintel sales import FILE adds them)",
        }
    sales["log_comp"] = np.log(sales.groupby("sku")["comp_min"].transform(lambda s: s.ffill().bfill()))
    sales["comp_min"] = np.exp(sales["log_comp"])
    demand = elasticity.fit_demand(
        sales,
        entity="sku",
        price="price",
        quantity="units",
        period="ds",
        cross_prices=("comp_min",),
        calendar=("dow",),
        category="category",
    )
    spec = {"cross_prices": ["comp_min"], "calendar": ["dow"], "category": "category", "method": "ols"}
    run_id = pricing_store.store_model_elasticity(engine, demand, sales, spec=spec)
    db_views.refresh(engine, views=("mv_app_elasticity",))
    return {"elasticity": demand.estimates, "elasticity_run_id": run_id}


def overall_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The overall rows of a backtest metrics frame, one per (scope, model), best first."""
    from priceintel.forecast.columns import OVERALL

    out = metrics[metrics["unique_id"] == OVERALL].drop(columns="unique_id")
    return out.sort_values(["scope", "mae"]).reset_index(drop=True)


def _forecast_summary(fmetrics: pd.DataFrame) -> dict:
    """The chosen model against the better naive baseline on the scored windows (empty metrics: a note)."""
    from priceintel.forecast.models import BASELINES

    if fmetrics.empty:
        return {"note": "no forecast yet: not enough price history to backtest (see 05-forecast)"}
    overall = overall_metrics(fmetrics)
    everything = overall[overall["scope"] == "all series"]
    best_baseline = everything[everything["model"].isin(["naive", "seasonal_naive"])].sort_values("mae").iloc[0]
    candidates = everything[~everything["model"].isin(BASELINES)]
    if (everything["model"] == "chosen").any():  # the tournament's pick, never the best on the test windows
        candidates = everything[everything["model"] == "chosen"]
    best_model = candidates.sort_values("mae").iloc[0] if len(candidates) else best_baseline
    forecast_summary = {
        "overall": overall,
        "best_baseline": best_baseline["model"],
        "best_baseline_mae": float(best_baseline["mae"]),
        "best_model": best_model["model"],
        "best_model_mae": float(best_model["mae"]),
        "ratio_to_best_baseline": float(best_model["mae"] / best_baseline["mae"]) if best_baseline["mae"] else None,
        **{c: plain(best_model.get(c)) for c in ("coverage_80", "coverage_95", "winkler_80", "winkler_95")},
        "split": (
            "rolling origins every `horizon` days; the first window only chooses each series' model and "
            "calibrates intervals, later windows are scored (the prophet subset on the same windows)"
        ),
    }
    return forecast_summary


def evaluate_stage(upstream: dict) -> dict:
    """Summarise every stage: scrape errors, match F1, forecast vs baselines, elasticity vs truth."""
    offers = pd.read_parquet(str(upstream["scrape"]["offers"]))
    scrape_errors = pd.read_csv(str(upstream["scrape"]["errors"]))
    clean_errors = pd.read_csv(str(upstream["clean"]["errors"]))
    obs = pd.read_parquet(str(upstream["clean"]["observations"]))
    match = read_json(upstream["match"]["metrics"])
    receipt = read_json(upstream["load"]["receipt"])
    fmetrics = pd.read_csv(str(upstream["forecast"]["forecast_metrics"]))
    el = pd.read_csv(str(upstream["elasticity"]["elasticity"]), dtype={"sku": str})

    forecast_summary = _forecast_summary(fmetrics)
    el_summary: dict[str, Any] = {"products": int(len(el)), "identified": int(el["identified"].sum())}
    truth_path = Path(upstream["world"]["world"]) / "truth" / "elasticities.csv"
    if truth_path.exists():
        truth = pd.read_csv(truth_path, dtype={"sku": str})
        both = el.merge(truth, on="sku")
        err = (both["elasticity"] - both["own_elasticity"]).abs()
        covered = (both["ci_lo"] <= both["own_elasticity"]) & (both["own_elasticity"] <= both["ci_hi"])
        el_summary.update({"mae_vs_truth": float(err.mean()), "ci95_coverage": float(covered.mean())})
        if "elasticity_pooled" in both:
            el_summary["pooled_mae_vs_truth"] = float((both["elasticity_pooled"] - both["own_elasticity"]).abs().mean())
        if "cross[comp_min]" in both:
            el_summary["cross_mae_vs_truth"] = float((both["cross[comp_min]"] - both["cross_elasticity"]).abs().mean())
    return {
        "scrape": {
            "pages": int(len(offers)),
            "errors": int(len(scrape_errors)),
            "errors_by_kind": scrape_errors.groupby("kind").size().to_dict() if len(scrape_errors) else {},
        },
        "clean": {"observations": int(len(obs)), "rejected": int(len(clean_errors))},
        "match": match,
        "load": receipt.get("table_counts", {}),
        "forecast": forecast_summary,
        "elasticity": el_summary,
    }
